"""HTTP-free errors of the ledger, raised where the fault is understood.

This module imports nothing from Django: the pure cores (`ledger.merkle`, `ledger.note`) and the offline bundle
verifier raise these too. `config/problems.py` maps them to problem+json; `extensions` carries named values.
"""


class LedgerError(Exception):
    """Base class of every ledger error."""

    extensions: dict = {}


class ProofError(LedgerError, ValueError):
    """A Merkle inclusion or consistency proof is malformed or does not lead to the expected root."""


class NoteError(LedgerError, ValueError):
    """A signed note, a key string or a checkpoint body is malformed, or its signatures do not verify."""


class EntryPayloadError(LedgerError, ValueError):
    """A ledger entry's kind or payload cannot be recorded (not canonical JSON we can reproduce)."""


class EntryNotFoundError(LedgerError, LookupError):
    """No entry with the requested sequence number (yet)."""

    def __init__(self, seq: int, tree_size: int):
        super().__init__(f"no entry {seq}: the ledger holds {tree_size} entries (seq 0..{tree_size - 1})")
        self.extensions = {"seq": seq, "tree_size": tree_size}


class TreeSizeError(LedgerError, ValueError):
    """A requested tree size is outside what the ledger holds or what a proof allows."""

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


class CheckpointNotFoundError(LedgerError, LookupError):
    """No signed checkpoint matches the request."""

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


class ImmutableEntryError(LedgerError):
    """Someone tried to change or delete a ledger entry; entries are append-only."""


class InconsistentCheckpointError(LedgerError):
    """The tree the registry would sign is not an extension of the last signed checkpoint: signing is refused."""

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


class DurabilityUnconfirmedError(LedgerError):
    """A change committed, but the database could not confirm that its ledger entry is on disk."""


class SigningKeyError(LedgerError):
    """The configured signing key cannot be read or parsed."""
