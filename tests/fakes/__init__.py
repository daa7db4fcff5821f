"""Fakes of AI provider services that the real SDKs talk to over loopback HTTP."""
