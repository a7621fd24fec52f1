"""Serving-side adapters: the registry of versions and aliases, the deployer, the canary."""
