"""The behaviours every provider shares, written once and run against each provider's case."""
