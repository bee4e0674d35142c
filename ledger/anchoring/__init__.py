"""Anchoring: signed checkpoints written to an EVM chain with web3, tracked until final."""
