"""The registry's signing key: where it comes from, how it is published, how it rotates.

The key is read, in order, from LEDGER_SIGNING_KEY (the key string itself), LEDGER_SIGNING_KEY_FILE, or the
embedded default VAR_DIR/keys/ledger.skey, which is generated (mode 0600) on first use and never committed.
With LEDGER_SIGNING_KEY_GENERATE off (production) nothing is generated: no configured key is an error.
The key string is Go's note signer form, `PRIVATE+KEY+<name>+<keyid>+<base64>`; its name is LEDGER_ORIGIN.
Every key that ever signed is published as a `VerifierKey`; a rotated-out key is marked retired, never removed.
"""

import os
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from ledger.core import note
from ledger.core.errors import NoteError, SigningKeyError
from ledger.log.conf import default_key_file, ledger_setting
from ledger.log.models import VerifierKey

_cache: dict[tuple, note.Signer] = {}
_published: set[str] = set()  # vkeys known to be committed as VerifierKey rows in this process


def signing_key_file() -> Path | None:
    """The file the signing key lives in, or None when it comes from the LEDGER_SIGNING_KEY string."""
    if ledger_setting("LEDGER_SIGNING_KEY"):
        return None
    configured = ledger_setting("LEDGER_SIGNING_KEY_FILE")
    return Path(configured) if configured else default_key_file()


def _write_key_file(path: Path, signer: note.Signer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(signer.skey + "\n")
    os.replace(temporary, path)


def _refuse_default_key_unless_generating() -> None:
    """With LEDGER_SIGNING_KEY_GENERATE off only a configured key signs: neither the embedded default file (which
    some earlier run may have left) nor a freshly generated one."""
    if not ledger_setting("LEDGER_SIGNING_KEY_FILE") and not ledger_setting("LEDGER_SIGNING_KEY_GENERATE"):
        raise SigningKeyError("no signing key configured: set LEDGER_SIGNING_KEY or LEDGER_SIGNING_KEY_FILE "
                              "(LEDGER_SIGNING_KEY_GENERATE is off, so none is generated)")


def signing_key_load() -> note.Signer:
    """The current signer. Creates the default key file when no key is configured, unless LEDGER_SIGNING_KEY_GENERATE
    is off, when it raises SigningKeyError instead. Cached while unchanged."""
    inline = ledger_setting("LEDGER_SIGNING_KEY")
    if inline:
        cache_key = ("inline", inline)
        if cache_key not in _cache:
            try:
                _cache[cache_key] = note.parse_signer_key(inline)
            except NoteError as error:
                raise SigningKeyError(f"LEDGER_SIGNING_KEY: {error}") from None
        return _cache[cache_key]
    _refuse_default_key_unless_generating()
    path = signing_key_file()
    if not path.exists():
        if ledger_setting("LEDGER_SIGNING_KEY_FILE"):
            raise SigningKeyError(f"LEDGER_SIGNING_KEY_FILE {path} does not exist")
        _write_key_file(path, note.generate_signer(ledger_setting("LEDGER_ORIGIN")))
    stat = path.stat()
    cache_key = ("file", str(path), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _cache:
        try:
            _cache[cache_key] = note.parse_signer_key(path.read_text())
        except NoteError as error:
            raise SigningKeyError(f"signing key file {path}: {error}") from None
    return _cache[cache_key]


def verifier_key_publish(signer: note.Signer) -> None:
    """Make sure `signer`'s verifier key is published (a VerifierKey row) and others are marked retired.

    Safe inside an outer transaction and under concurrency (insert-or-ignore); the process remembers the key as
    published only once that transaction commits.
    """
    vkey = signer.verifier.vkey
    if vkey in _published:
        return
    VerifierKey.objects.bulk_create([VerifierKey(name=signer.name, key_id=signer.key_id.hex(), vkey=vkey)],
                                    ignore_conflicts=True)
    VerifierKey.objects.filter(retired_at__isnull=True).exclude(vkey=vkey).update(retired_at=timezone.now())
    transaction.on_commit(lambda: _published.add(vkey))


def verifier_keys() -> list[note.Verifier]:
    """Every published verifier key, current and retired, parsed."""
    return [note.parse_verifier_key(vkey) for vkey in VerifierKey.objects.values_list("vkey", flat=True)]


def signing_key_rotate() -> note.Signer:
    """Generate a new signer in the key file, keep the old file as `<name>.<keyid>.retired`, publish the new key.

    Refuses (SigningKeyError) when the key comes from LEDGER_SIGNING_KEY: put the new key there instead; and, with
    LEDGER_SIGNING_KEY_GENERATE off, when no LEDGER_SIGNING_KEY_FILE is configured.
    """
    path = signing_key_file()
    if path is None:
        raise SigningKeyError("the signing key comes from LEDGER_SIGNING_KEY; generate a new key and set it there")
    _refuse_default_key_unless_generating()
    new = note.generate_signer(ledger_setting("LEDGER_ORIGIN"))
    if path.exists():
        old = signing_key_load()
        verifier_key_publish(old)  # an old key that never signed is published too, so it can be retired
        path.replace(path.with_name(f"{path.name}.{old.key_id.hex()}.retired"))
    _write_key_file(path, new)
    with transaction.atomic():
        verifier_key_publish(new)
    return new
