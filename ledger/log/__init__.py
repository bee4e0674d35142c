"""The log: entries, the stored Merkle tree, signed checkpoints, signing keys, proofs over the API, the ledger page
and `verify_ledger`."""
