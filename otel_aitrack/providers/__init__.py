"""Provider modules: one per SDK, each answering the contract in `base`."""
