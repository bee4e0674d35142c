"""The pure core of the ledger (standard library and `cryptography` only): the RFC 6962 Merkle tree, C2SP signed
notes and checkpoints, entry bytes, canonical JSON, the registry's replay rule book, money quanta and the anchor data
format. The server and the offline verifier share every line of it."""
