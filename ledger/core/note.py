"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint), Ed25519 only.

Pure: text and bytes in and out, no Django; needs only the standard library and `cryptography`. Byte-compatible with
Go's golang.org/x/mod/sumdb/note, whose published test vectors pass (tests/ledger/test_note.py).

A signed note is its text (UTF-8, ending in a newline), a blank line, then one line per signature:
``— <name> <base64(key ID [4 bytes] || Ed25519 signature [64 bytes])>``. The signed message is the text including
its final newline. A key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), 0x01 being the
Ed25519 signature type. Key strings:

- verifier key: ``<name>+<key ID, 8 hex digits>+<base64(0x01 || 32-byte public key)>``
- signer key (Go's private key format): ``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || 32-byte seed)>``

Keep signer keys secret; publish verifier keys. Base64 is standard with padding (RFC 4648 section 4).
"""

import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core.errors import NoteError

SIGNATURE_TYPE_ED25519 = 0x01  # the byte that follows name || 0x0A in the key ID hash and leads the key encoding
KEY_ID_SIZE = 4  # bytes
ED25519_PUBLIC_KEY_SIZE = 32  # bytes
ED25519_SIGNATURE_SIZE = 64  # bytes
SIGNATURE_LINE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # Go's note.Open refuses more; so do we
UINT64_MAX = 2**64 - 1


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"not standard base64: {text[:40]!r}") from None


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"invalid key name {name!r}: want non-empty, no spaces, no '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key ID: SHA-256(name || 0x0A || 0x01 || public_key)[:4]."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    key_id: bytes  # 4 bytes
    public_key: bytes  # 32 bytes

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    @property
    def vkey(self) -> str:
        """The verifier key string, `name+keyid+base64(0x01 || public key)`."""
        encoded = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id_hex}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when `signature` is this key's Ed25519 signature of `message`; never raises."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(bytes(signature), bytes(message))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key. `seed` is the 32-byte RFC 8032 private key."""

    name: str
    key_id: bytes
    seed: bytes = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, _public_key_of(self.seed))

    @property
    def skey(self) -> str:
        """The signer key string, in Go's `PRIVATE+KEY+name+keyid+base64(0x01 || seed)` form. Secret."""
        encoded = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message` (deterministic, RFC 8032)."""
        return _private_key(self.seed).sign(bytes(message))


@functools.lru_cache(maxsize=16)
def _private_key(seed: bytes) -> Ed25519PrivateKey:
    # Loading a key derives its public half (a scalar multiplication): as costly as the signature itself.
    return Ed25519PrivateKey.from_private_bytes(seed)


@functools.lru_cache(maxsize=16)
def _public_key_of(seed: bytes) -> bytes:
    return _private_key(seed).public_key().public_bytes_raw()


def _split_key(key: str, parts: int, what: str) -> list[str]:
    pieces = key.strip().split("+", parts - 1)  # the base64 tail may itself hold '+'
    if len(pieces) != parts:
        raise NoteError(f"malformed {what}: {len(pieces)} '+'-separated fields, want {parts}")
    return pieces


def _decode_key(name: str, id_hex: str, encoded: str, what: str) -> tuple[bytes, bytes]:
    _check_name(name)
    if len(id_hex) != 2 * KEY_ID_SIZE:
        raise NoteError(f"malformed {what}: key ID {id_hex!r} has {len(id_hex)} hex digits, want 8")
    try:
        want_id = bytes.fromhex(id_hex)
    except ValueError:
        raise NoteError(f"malformed {what}: key ID {id_hex!r} is not hex") from None
    raw = _b64decode(encoded)
    if not raw or raw[0] != SIGNATURE_TYPE_ED25519:
        got = f"0x{raw[0]:02x}" if raw else "nothing"
        raise NoteError(f"unknown key algorithm {got} in {what}, want 0x01 (Ed25519)")
    if len(raw) != 1 + ED25519_PUBLIC_KEY_SIZE:
        raise NoteError(f"{what} key has {len(raw) - 1} bytes, want {ED25519_PUBLIC_KEY_SIZE}")
    return want_id, raw[1:]


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse `name+keyid+base64(0x01 || public key)`; raise `NoteError` if malformed or the key ID mismatches."""
    name, id_hex, encoded = _split_key(vkey, 3, "verifier key")
    want_id, public_key = _decode_key(name, id_hex, encoded, "verifier key")
    got_id = key_id(name, public_key)
    if got_id != want_id:
        raise NoteError(f"verifier key ID {want_id.hex()} does not match its key, which hashes to {got_id.hex()}")
    return Verifier(name, got_id, public_key)


def parse_signer_key(skey: str) -> Signer:
    """Parse Go's `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`; raise `NoteError` if malformed."""
    private, key, name, id_hex, encoded = _split_key(skey, 5, "signer key")
    if (private, key) != ("PRIVATE", "KEY"):
        raise NoteError("malformed signer key: want it to start with PRIVATE+KEY+")
    want_id, seed = _decode_key(name, id_hex, encoded, "signer key")
    got_id = key_id(name, _public_key_of(seed))
    if got_id != want_id:
        raise NoteError(f"signer key ID {want_id.hex()} does not match its key, which hashes to {got_id.hex()}")
    return Signer(name, got_id, seed)


def generate_signer(name: str) -> Signer:
    """A new random Ed25519 signer named `name`."""
    _check_name(name)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    return Signer(name, key_id(name, private.public_key().public_bytes_raw()), seed)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    if "\n\n" in text:
        raise NoteError("note text must not contain a blank line")
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F]
    if bad:
        raise NoteError(f"note text holds control character {bad[0]!r}; only newline is allowed")


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """The signed note: `text`, a blank line, one signature line per signer (in the order given).

    Requires `text` to end in a newline and to hold no blank line and no control character but newline.
    """
    _check_text(text)
    message = text.encode()
    lines = []
    for signer in signers:
        blob = base64.b64encode(signer.key_id + signer.sign(message)).decode()
        lines.append(f"{SIGNATURE_LINE_PREFIX}{signer.name} {blob}\n")
    if not lines:
        raise NoteError("no signers given; a note needs at least one signature")
    return text + "\n" + "".join(lines)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes  # the signature proper, without the key ID


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the signatures a known key verified, and those from unknown keys."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines, checking only the format."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = note[:split + 1], note[split + 2:]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("malformed note: the last signature line does not end in a newline")
    signatures = []
    for number, line in enumerate(block[:-1].split("\n"), start=1):
        if not line.startswith(SIGNATURE_LINE_PREFIX):
            raise NoteError(f"malformed signature line {number}: want it to start with '— '")
        name, _, encoded = line[len(SIGNATURE_LINE_PREFIX):].partition(" ")
        _check_name(name)
        blob = _b64decode(encoded)
        if len(blob) <= KEY_ID_SIZE:
            raise NoteError(f"signature line {number} has {len(blob)} bytes, want more than {KEY_ID_SIZE}")
        signatures.append(NoteSignature(name, blob[:KEY_ID_SIZE], blob[KEY_ID_SIZE:]))
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(signatures)} signatures, more than the {MAX_SIGNATURES} allowed")
    return text, signatures


def open_note(note: str, verifiers: Iterable[Verifier]) -> Note:
    """Parse `note` and check its signatures against the known `verifiers`.

    Signatures from keys not in `verifiers` (by name and key ID) are ignored and listed as unverified. A known
    key whose signature fails rejects the note; so does a note with no signature from a known key. Raises
    `NoteError` in both cases and for any malformed note.
    """
    text, signatures = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode()
    verified, unverified = [], []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            unverified.append(signature)
            continue
        if not verifier.verify(message, signature.signature):
            raise NoteError(f"invalid signature for key {signature.name}+{signature.key_id.hex()}")
        if signature not in verified:
            verified.append(signature)
    if not verified:
        raise NoteError("note has no verifiable signatures")
    return Note(text, tuple(verified), tuple(unverified))


# --- tlog checkpoints -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The body of a C2SP tlog checkpoint: origin, tree size, root hash, then optional extension lines."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """`<origin>\\n<tree size>\\n<base64 root>\\n` plus one line per extension: the text a note signs."""
    if not checkpoint.origin or "\n" in checkpoint.origin:
        raise NoteError(f"invalid checkpoint origin {checkpoint.origin!r}")
    if not 0 <= checkpoint.tree_size <= UINT64_MAX:
        raise NoteError(f"tree size {checkpoint.tree_size} outside 0..{UINT64_MAX}")
    lines = [checkpoint.origin, str(checkpoint.tree_size), base64.b64encode(checkpoint.root_hash).decode()]
    for extension in checkpoint.extensions:
        if not extension or "\n" in extension:
            raise NoteError(f"invalid checkpoint extension line {extension!r}")
        lines.append(extension)
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str, *, hash_size: int | None = 32) -> Checkpoint:
    """Parse a checkpoint body (the note text, not the signatures). Raises `NoteError` naming what is wrong.

    The root must decode to `hash_size` bytes (32 for RFC 6962 SHA-256; None accepts any length).
    """
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint has {len(lines)} lines, want at least 3 (origin, size, root)")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin line is empty")
    if not size_text.isascii() or not size_text.isdigit() or (len(size_text) > 1 and size_text[0] == "0"):
        raise NoteError(f"checkpoint tree size {size_text!r} is not a decimal number")
    tree_size = int(size_text)
    if tree_size > UINT64_MAX:
        raise NoteError(f"checkpoint tree size {tree_size} exceeds {UINT64_MAX}")
    root_hash = _b64decode(root_text)
    if hash_size is not None and len(root_hash) != hash_size:
        raise NoteError(f"checkpoint root has {len(root_hash)} bytes, want {hash_size}")
    if any(not line for line in extensions):
        raise NoteError("checkpoint has an empty extension line")
    return Checkpoint(origin, tree_size, root_hash, tuple(extensions))
