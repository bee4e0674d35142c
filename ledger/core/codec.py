"""The bytes of a ledger entry, which its hash and signature cover. Pure: the standard library only.

The registry writes entries with `entry_bytes` and the offline verifier rebuilds them with the same function.

Entry bytes are the RFC 8785 (JSON Canonicalization Scheme) encoding of the object

    {"seq": <int>, "kind": <str>, "payload": <object>, "timestamp": <str>, "prev_hash": <str>}

with these encodings:

- ``seq``: the entry's 0-based position in the log, a JSON integer.
- ``timestamp``: RFC 3339 in UTC with exactly six fractional digits and a ``Z``, e.g.
  ``2026-03-01T08:30:00.000000Z`` (microseconds: what PostgreSQL and SQLite both store exactly).
- ``prev_hash``: the previous entry's hash as 64 lowercase hex digits; 64 zeros for entry 0.
- ``payload``: a JSON object. Numbers must be integers within ±(2**53 - 1), the range RFC 8785 and every JSON
  parser represent exactly; write decimals, money and measurements as strings ("12.50"). Floats are refused, so
  that a payload reads back from the database (jsonb, SQLite) to exactly the bytes that were signed.

The entry's hash is the RFC 6962 leaf hash SHA-256(0x00 || entry bytes), so it is the leaf of the Merkle tree, and
its signature is Ed25519 over those 32 hash bytes.
"""

import json
from datetime import UTC, datetime

from ledger.core.canonical_json import canonical_json
from ledger.core.errors import EntryPayloadError
from ledger.core.merkle import HASH_SIZE

ZERO_HASH = bytes(HASH_SIZE)  # prev_hash of entry 0
MAX_SAFE_INTEGER = 2**53 - 1
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_KIND_LENGTH = 64


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2026-03-01T08:30:00.000000Z. Requires an aware datetime."""
    if moment.tzinfo is None:
        raise EntryPayloadError(f"timestamp {moment.isoformat()} has no time zone; want an aware UTC datetime")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def check_payload(value: object, where: str = "payload") -> None:
    """Raise EntryPayloadError naming the first value that entry bytes cannot carry exactly."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, where)
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise EntryPayloadError(f"{where} is {value}, outside ±{MAX_SAFE_INTEGER}; write it as a string")
        return
    if isinstance(value, float):
        raise EntryPayloadError(f"{where} is the float {value!r}; write decimals as strings, e.g. \"{value}\"")
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_payload(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntryPayloadError(f"{where} has key {key!r} of type {type(key).__name__}, want str")
            _check_text(key, f"{where} key {key!r}")
            check_payload(item, f"{where}.{key}")
        return
    raise EntryPayloadError(f"{where} is a {type(value).__name__}, which JSON cannot carry; want str, int, "
                            "bool, null, list or object")


def _check_text(text: str, where: str) -> None:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise EntryPayloadError(f"{where} holds a lone surrogate, which UTF-8 cannot carry") from None


def _keys_ascii(value: object) -> bool:
    if isinstance(value, dict):
        return all(key.isascii() and _keys_ascii(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_keys_ascii(item) for item in value)
    return True


def canonical_bytes(document: dict) -> bytes:
    """RFC 8785 bytes of `document`, a JSON object that check_payload accepts (no floats, safe integers).

    For such values RFC 8785 is json.dumps with sorted keys, no spaces and no ASCII escaping, provided every
    object key is ASCII: RFC 8785 sorts keys by UTF-16 code units, Python by code points, and the two orders part
    above U+FFFF. That covers the payloads Tanhui writes, at a quarter of the cost; other keys take the full
    encoder (`ledger.core.canonical_json`). Tests compare both with the rfc8785 package on generated values.
    """
    if _keys_ascii(document):
        return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return canonical_json(document)


def check_kind(kind: object) -> None:
    if not isinstance(kind, str) or not kind or len(kind) > MAX_KIND_LENGTH or not kind.isascii() or (
            not kind.replace("_", "").replace(".", "").isalnum()):
        raise EntryPayloadError(f"entry kind {kind!r} must be 1-{MAX_KIND_LENGTH} ASCII letters, digits, '_' or '.'")


def entry_bytes(*, seq: int, kind: str, payload: dict, timestamp: str, prev_hash: bytes) -> bytes:
    """RFC 8785 canonical JSON of {seq, kind, payload, timestamp, prev_hash} (see the module docstring)."""
    if not isinstance(payload, dict):
        raise EntryPayloadError(f"payload is a {type(payload).__name__}, want a JSON object")
    check_payload(payload)
    document = {"seq": seq, "kind": kind, "payload": payload, "timestamp": timestamp,
                "prev_hash": bytes(prev_hash).hex()}
    return canonical_bytes(document)
