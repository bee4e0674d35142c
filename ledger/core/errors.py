"""HTTP-free errors of the ledger, raised where the fault is understood.

This module imports nothing from Django: the pure cores (`ledger.core`) and the offline bundle
verifier raise these too. `config/problems.py` maps them to problem+json; `extensions` carries named values.
"""
import contextlib


def gettext_noop(message: str) -> str:
    """Mark `message` for translation (makemessages finds it by this name) without importing Django."""
    return message


class TranslatableMessage(str):
    """An English sentence that keeps its template and named values, so that a door can show it in its user's
    language (`config.common.problems.translated`); everywhere else it is the plain English string:

        detail = TranslatableMessage(gettext_noop("geometry must be a Polygon; got %(got)s"), got="'Point'")
        detail == "geometry must be a Polygon; got 'Point'"

    A value may itself be a TranslatableMessage (translated first, then filled in). A template without values is
    shown as it is, so it must not escape '%' as '%%'.
    """

    message_template: str
    message_params: dict

    def __new__(cls, message_template: str = "", /, **params):
        text = message_template
        if params:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                text = message_template % params
        message = super().__new__(cls, text)
        message.message_template, message.message_params = message_template, params
        return message


def joined_message(separator: str, messages) -> TranslatableMessage:
    """`messages` joined by `separator` (marked for translation too: `gettext_noop("; ")`) as one
    TranslatableMessage; each part and the separator are translated when it is shown."""
    params = {f"part{index}": message for index, message in enumerate(messages)}
    template = separator.replace("%", "%%").join(f"%({name})s" for name in params)
    joined = TranslatableMessage(template, **params)
    joined.message_separator = separator
    return joined


class TranslatableError(Exception):
    """An error whose message is a template with named values, so that each door can show it in its user's
    language (the API by Accept-Language, the pages by the chosen language):

        raise AssetStateError(gettext_noop("asset %(asset_code)s is %(asset_status)s"), asset_code=code, ...)

    `str(exc)` is the English sentence; `message_template` and `message_params` let `config.common.problems`
    translate it; the params are also the problem's named extension members, unless `extensions` names others
    (when a value is only there to be shown, e.g. a list already written out). `field` names the request field at
    fault, when one is (a page shows the message beside that field; the API names it in `errors`); a class may
    name it once for all its errors (`field = "uscc"`).
    """

    extensions: dict = {}
    field: str | None = None

    def __init__(self, message_template: str = "", *, field: str | None = None, extensions: dict | None = None,
                 **params):
        self.message_template, self.message_params = message_template, params
        super().__init__(TranslatableMessage(message_template, **params))
        self.extensions = params if extensions is None else extensions
        if field is not None:
            self.field = field

    @property
    def message(self) -> TranslatableMessage:
        """The message as a TranslatableMessage, to become a value of another message."""
        return TranslatableMessage(self.message_template, **self.message_params)


class LedgerError(Exception):
    """Base class of every ledger error."""

    extensions: dict = {}


class ProofError(LedgerError, ValueError):
    """A Merkle inclusion or consistency proof is malformed or does not lead to the expected root."""

    http_status = 422
    problem_slug = "invalid-proof"
    problem_title = gettext_noop("Invalid Merkle proof")


class NoteError(LedgerError, ValueError):
    """A signed note, a key string or a checkpoint body is malformed, or its signatures do not verify."""

    http_status = 422
    problem_slug = "invalid-note"
    problem_title = gettext_noop("Invalid signed note")


class EntryPayloadError(TranslatableError, LedgerError, ValueError):
    """A ledger entry's kind or payload cannot be recorded (not canonical JSON we can reproduce)."""

    http_status = 422
    problem_slug = "invalid-entry"
    problem_title = gettext_noop("Invalid ledger entry")


class EntryNotFoundError(TranslatableError, LedgerError, LookupError):
    """No entry with the requested sequence number (yet)."""

    http_status = 404
    problem_slug = "entry-not-found"
    problem_title = gettext_noop("No such ledger entry")

    def __init__(self, seq: int, tree_size: int):
        super().__init__(gettext_noop("no entry %(seq)s: the ledger holds %(tree_size)s entries (seq 0..%(last_seq)s)"),
                         seq=seq, tree_size=tree_size, last_seq=tree_size - 1,
                         extensions={"seq": seq, "tree_size": tree_size})


class TreeSizeError(TranslatableError, LedgerError, ValueError):
    """A requested tree size is outside what the ledger holds or what a proof allows."""

    http_status = 422
    problem_slug = "invalid-tree-size"
    problem_title = gettext_noop("Tree size out of range")


class CheckpointNotFoundError(TranslatableError, LedgerError, LookupError):
    """No signed checkpoint matches the request."""

    http_status = 404
    problem_slug = "checkpoint-not-found"
    problem_title = gettext_noop("No such checkpoint")


class CheckpointDueError(TranslatableError, LedgerError):
    """No signed checkpoint covers the entries asked for yet, and reads never sign one: one has been requested and
    is due in `retry_after_s` seconds (409, with Retry-After)."""

    http_status = 409
    problem_slug = "checkpoint-due"
    problem_title = gettext_noop("Checkpoint due")

    def __init__(self, *, min_tree_size: int, latest_tree_size: int | None, retry_after_s: int):
        super().__init__(
            gettext_noop("no signed checkpoint covers the asset's entries yet: they need a tree of %(min_tree_size)s "
                         "entries and the latest checkpoint has %(latest_tree_size)s; one is due, retry in "
                         "%(retry_after_s)s s"),
            min_tree_size=min_tree_size, retry_after_s=retry_after_s,
            latest_tree_size=TranslatableMessage(gettext_noop("none")) if latest_tree_size is None
            else latest_tree_size,
            extensions={"min_tree_size": min_tree_size, "latest_tree_size": latest_tree_size,
                        "retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class ImmutableEntryError(TranslatableError, LedgerError):
    """Someone tried to change or delete a ledger entry; entries are append-only."""

    http_status = 409
    problem_slug = "immutable-entry"
    problem_title = gettext_noop("Ledger entries cannot change")


class InconsistentCheckpointError(TranslatableError, LedgerError):
    """The tree the registry would sign is not an extension of the last signed checkpoint: signing is refused."""

    http_status = 409
    problem_slug = "inconsistent-checkpoint"
    problem_title = gettext_noop("Checkpoint would be inconsistent")


class DurabilityUnconfirmedError(TranslatableError, LedgerError):
    """A change committed, but the database could not confirm that its ledger entry is on disk."""

    http_status = 503
    problem_slug = "durability-unconfirmed"
    problem_title = gettext_noop("Committed but not confirmed on disk")


class SigningKeyError(LedgerError):
    """The configured signing key cannot be read or parsed."""
