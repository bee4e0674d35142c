"""The ledger's backup file, which `manage.py export_ledger` writes and `manage.py import_ledger` reads.

Newline-delimited JSON (UTF-8, one JSON object per line), in four sections whose lengths the header gives
(docs/ledger.md, "Backups", is the reference):

1. line 1, the header: format name and version, origin, tree size, root hash, the verifier keys, how many
   checkpoint and row lines follow, and which user acts for which party;
2. one line per entry, seq 0 to tree_size - 1, exactly as `GET /api/ledger/entries/{seq}/` serves it;
3. one line per signed checkpoint, rising sizes, exactly as `GET /api/ledger/checkpoints/` serves it;
4. one line per row of the parcels, rasters, method versions, accounting runs and parcel results that the
   entries point to, in Django's serialization format (`{"model", "pk", "fields"}`, as `dumpdata` writes).

An import checks every line as it reads it, writes into an empty database, rebuilds the registry's tables by
replaying the entries, runs verify_ledger's checks, and commits only if everything holds; a refusal names the
first bad line and leaves the database as it was. Nothing here is a pure core: the tables are Django's.
"""

import base64
import binascii
import json
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounting.models import AccountingRun, MethodVersion, ParcelResult
from config.common.version import code_version
from geo.models import Parcel, Raster
from ledger.core import codec, note
from ledger.core.errors import LedgerError, NoteError
from ledger.core.money import PRICE_QUANTUM, STOCK_QUANTUM, decimal_text
from ledger.core.replay import ReplayError, first_difference, price_of
from ledger.log.api import CheckpointOutput, KeyOutput
from ledger.log.conf import ledger_setting
from ledger.log.models import Checkpoint, Entry, LogHead, VerifierKey
from ledger.log.services import (
    checkpoints_restore,
    entries_flush_before_showing,
    entries_restore,
    frontier_root,
    verifier_keys_restore,
)
from ledger.log.verification import EntryChecker, ledger_verify
from ledger.registry.models import Party
from ledger.registry.projection import parcel_facts, registry_tables_rebuild

FORMAT = "tanhui-ledger-backup"
VERSION = 1
# The rows a backup carries besides the ledger, in the order it carries them (each after what it points to).
ROW_MODELS = (Raster, MethodVersion, Parcel, AccountingRun, ParcelResult)
ROW_LABELS = tuple(model._meta.label_lower for model in ROW_MODELS)
ENTRY_FIELDS = ("seq", "kind", "payload", "timestamp", "prev_hash", "hash", "signature", "key_id")
CHECKPOINT_FIELDS = ("tree_size", "root_hash", "key_id", "created_at", "note")
KEY_FIELDS = ("name", "key_id", "vkey", "created_at", "retired_at", "current")
ROW_FIELDS = ("model", "pk", "fields")
HEADER_FIELDS = ("format", "version", "origin", "tree_size", "root_hash", "keys", "checkpoints", "rows",
                 "party_users", "exported_at", "code_version")
CHUNK_ROWS = 2000
ID_CHUNK = 500  # ids per `IN (...)` query


class BackupError(Exception):
    """A backup file that cannot be written or restored. `line` is the 1-based line at fault, when one is."""

    def __init__(self, line: int | None, message: str):
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


def _b64(value) -> str:
    return base64.b64encode(bytes(value)).decode()


def _json_default(value):
    """What json cannot write by itself: datetimes in full (Django's encoder would cut microseconds)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a backup")


def _line(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_json_default) + "\n"


# --- export ----------------------------------------------------------------------------------------------------


@dataclass
class ExportReport:
    tree_size: int
    checkpoints: int
    rows: dict[str, int]
    seconds: float = 0.0


@contextmanager
def _snapshot():
    """One consistent view of the database for the whole export. PostgreSQL: a REPEATABLE READ, READ ONLY
    transaction (appends go on meanwhile); SQLite: a transaction, whose write lock makes appends wait."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start:start + ID_CHUNK]


def _row_ids(tree_size: int) -> dict[type, list[int]]:
    """The ids of the rows the first `tree_size` entries point to, per model in ROW_MODELS: the parcels assets
    are registered on, and the accounting runs valuations name, each whole (all its parcels and results) with
    its method version and rasters."""
    parcel_ids, run_ids = set(), set()
    named = (Entry.objects.filter(seq__lt=tree_size, kind__in=("asset.register", "asset.value"))
             .values_list("kind", "payload"))
    for kind, payload in named.iterator(chunk_size=CHUNK_ROWS):
        if kind == "asset.register":
            parcel_ids.add(payload["parcel"]["id"])
        else:
            run_ids.add(payload["run"])
    runs = sorted(run_ids)
    result_ids, raster_ids, method_ids = set(), set(), set()
    links = AccountingRun.parcels.through.objects
    for chunk in _chunks(runs):
        for raster, alt_raster, method in AccountingRun.objects.filter(id__in=chunk).values_list(
                "raster_id", "alt_raster_id", "method_version_id"):
            raster_ids.update(i for i in (raster, alt_raster) if i is not None)
            method_ids.add(method)
        parcel_ids.update(links.filter(accountingrun_id__in=chunk).values_list("parcel_id", flat=True))
        for result, parcel in ParcelResult.objects.filter(run_id__in=chunk).values_list("id", "parcel_id"):
            result_ids.add(result)
            parcel_ids.add(parcel)
    return {Raster: sorted(raster_ids), MethodVersion: sorted(method_ids), Parcel: sorted(parcel_ids),
            AccountingRun: runs, ParcelResult: sorted(result_ids)}


def _user_fields(model) -> list[str]:
    user_model = get_user_model()
    return [f.name for f in model._meta.concrete_fields if f.is_relation and f.related_model is user_model]


def _row_records(model, ids: list[int]) -> Iterator[dict]:
    """The rows of `model` with `ids`, in id order, in Django's serialization format; links to users left out
    (null): a backup carries no user accounts."""
    users = _user_fields(model)
    for chunk in _chunks(ids):
        for obj in model.objects.filter(id__in=chunk).order_by("id"):
            record = serializers.serialize("python", [obj])[0]
            for name in users:
                record["fields"][name] = None
            yield record


def _entry_record(seq, kind, payload, timestamp, prev_hash, entry_hash, signature, key_id) -> dict:
    """An entry as the ledger API serves it (`ledger.log.api.EntryOutput`; the tests hold the two equal)."""
    return {"seq": seq, "kind": kind, "payload": payload, "timestamp": codec.format_timestamp(timestamp),
            "prev_hash": _b64(prev_hash), "hash": _b64(entry_hash), "signature": _b64(signature), "key_id": key_id}


def ledger_export(out: IO[str]) -> ExportReport:
    """Write the whole ledger to `out` as a backup file (the module docstring), from one snapshot, streaming:
    memory does not grow with the number of entries (only with the number of rows entries point to). Returns
    once every entry written is on disk in the database (PostgreSQL: see `entries_flush_before_showing`), so
    that a backup never holds an entry that a crash of the database could take back; raises
    DurabilityUnconfirmedError when that cannot be confirmed."""
    started = time.perf_counter()
    with _snapshot():
        entries_flush_before_showing()  # waits when the snapshot's transaction ends
        head = LogHead.objects.filter(pk=1).first()
        tree_size = head.tree_size if head is not None else 0
        root = frontier_root(bytes(head.frontier)) if head is not None else frontier_root(b"")
        checkpoints = Checkpoint.objects.filter(tree_size__lte=tree_size).order_by("tree_size")
        row_ids = _row_ids(tree_size)
        party_users = dict(Party.objects.filter(user__isnull=False).order_by("id")
                           .values_list("id", "user__username"))
        checkpoint_count = checkpoints.count()
        out.write(_line({
            "format": FORMAT, "version": VERSION, "origin": ledger_setting("LEDGER_ORIGIN"), "tree_size": tree_size,
            "root_hash": _b64(root), "keys": KeyOutput(VerifierKey.objects.all(), many=True).data,
            "checkpoints": checkpoint_count, "rows": sum(len(ids) for ids in row_ids.values()),
            "party_users": {str(party): username for party, username in party_users.items()},
            "exported_at": timezone.now().isoformat(), "code_version": code_version(),
        }))
        entries = (Entry.objects.filter(seq__lt=tree_size).order_by("seq")
                   .values_list("seq", "kind", "payload", "timestamp", "prev_hash", "hash", "signature", "key_id"))
        for row in entries.iterator(chunk_size=CHUNK_ROWS):
            out.write(_line(_entry_record(*row)))
        for checkpoint in checkpoints.iterator(chunk_size=CHUNK_ROWS):
            out.write(_line(CheckpointOutput(checkpoint).data))
        for model, ids in row_ids.items():
            for record in _row_records(model, ids):
                out.write(_line(record))
    return ExportReport(tree_size, checkpoint_count,
                        {model._meta.label_lower: len(ids) for model, ids in row_ids.items()},
                        time.perf_counter() - started)


# --- import ----------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    tree_size: int
    checkpoints: int
    rows: dict[str, int]
    registry: dict[str, int]
    unlinked_users: dict[int, str]  # party id -> the username it acted for, which this database lacks
    current_key: str
    seconds: float = 0.0


class _Lines:
    """The file's lines as JSON objects, numbered from 1; `number` is the line read last."""

    def __init__(self, lines: Iterable[bytes]):
        self._lines = iter(lines)
        self.number = 0

    def next(self, what: str) -> dict:
        raw = next(self._lines, None)
        if raw is None:
            raise BackupError(self.number + 1, f"the file ends where {what} belongs")
        self.number += 1
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as error:
            raise BackupError(self.number, f"{what}: not JSON ({error})") from None
        if not isinstance(document, dict):
            raise BackupError(self.number, f"{what}: a JSON {type(document).__name__}, want an object")
        return document

    def end(self, announced: str) -> None:
        if next(self._lines, None) is not None:
            raise BackupError(self.number + 1, f"a line after the last one the header announces ({announced})")


def _fields(document: dict, names: tuple[str, ...], line: int, what: str) -> None:
    if set(document) != set(names):
        missing, extra = sorted(set(names) - set(document)), sorted(set(document) - set(names))
        raise BackupError(line, f"{what}: fields {', '.join(missing) or '-'} missing, {', '.join(extra) or '-'} "
                                f"unknown; want {', '.join(names)}")


def _integer(value, line: int, what: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BackupError(line, f"{what} is {value!r}, want an integer >= {minimum}")
    return value


def _text(value, line: int, what: str) -> str:
    if not isinstance(value, str):
        raise BackupError(line, f"{what} is {value!r}, want a string")
    return value


def _bytes(value, size: int, line: int, what: str) -> bytes:
    try:
        decoded = base64.b64decode(_text(value, line, what), validate=True)
    except (binascii.Error, ValueError):
        raise BackupError(line, f"{what} {value!r} is not base64") from None
    if len(decoded) != size:
        raise BackupError(line, f"{what} has {len(decoded)} bytes, want {size}")
    return decoded


def _moment(value, line: int, what: str, *, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    moment = parse_datetime(_text(value, line, what))
    if moment is None or moment.tzinfo is None:
        raise BackupError(line, f"{what} {value!r} is not an ISO 8601 time with a zone")
    return moment


def _entry_timestamp(value, line: int, seq: int) -> datetime:
    """The entry's RFC 3339 timestamp, which must be in the codec's one spelling (its bytes carry it)."""
    text = _text(value, line, f"entry {seq}: timestamp")
    try:
        moment = datetime.strptime(text, codec.TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        moment = None
    if moment is None or codec.format_timestamp(moment) != text:
        raise BackupError(line, f"entry {seq}: timestamp {text!r} is not in the form 2026-03-01T08:30:00.000000Z")
    return moment


@dataclass
class _Header:
    origin: str
    tree_size: int
    root_hash: bytes
    keys: list[VerifierKey]
    verifiers: dict[str, note.Verifier]
    checkpoints: int
    rows: int
    party_users: dict[int, str]

    def announces(self) -> str:
        return f"{self.tree_size} entries, {self.checkpoints} checkpoints, {self.rows} rows"


def _header(lines: _Lines) -> _Header:
    document = lines.next("the header")
    if document.get("format") != FORMAT:
        raise BackupError(1, f"format {document.get('format')!r}, want {FORMAT!r}: not a ledger backup")
    if document.get("version") != VERSION:
        raise BackupError(1, f"format version {document.get('version')!r}; this registry reads version {VERSION}")
    _fields(document, HEADER_FIELDS, 1, "the header")
    origin = ledger_setting("LEDGER_ORIGIN")
    if document["origin"] != origin:
        raise BackupError(1, f"the backup is of the log {document['origin']!r}, but this registry's LEDGER_ORIGIN "
                             f"is {origin!r}")
    if not isinstance(document["keys"], list):
        raise BackupError(1, "keys is not a list")
    keys, verifiers = [], {}
    for index, key in enumerate(document["keys"]):
        what = f"keys[{index}]"
        if not isinstance(key, dict):
            raise BackupError(1, f"{what} is not an object")
        _fields(key, KEY_FIELDS, 1, what)
        try:
            verifier = note.parse_verifier_key(_text(key["vkey"], 1, f"{what}.vkey"))
        except NoteError as error:
            raise BackupError(1, f"{what}: {error}") from None
        if (verifier.name, verifier.key_id_hex) != (key["name"], key["key_id"]):
            raise BackupError(1, f"{what} says name {key['name']!r} key id {key['key_id']!r}, but its vkey is of "
                                 f"{verifier.name!r} {verifier.key_id_hex!r}")
        retired_at = _moment(key["retired_at"], 1, f"{what}.retired_at", optional=True)
        if key["current"] is not (retired_at is None):
            raise BackupError(1, f"{what}: current is {key['current']!r} but retired_at is {key['retired_at']!r}")
        keys.append(VerifierKey(name=verifier.name, key_id=verifier.key_id_hex, vkey=verifier.vkey,
                                created_at=_moment(key["created_at"], 1, f"{what}.created_at"), retired_at=retired_at))
        verifiers[verifier.key_id_hex] = verifier
    party_users = document["party_users"]
    if not isinstance(party_users, dict) or not all(
            key.isdigit() and isinstance(value, str) for key, value in party_users.items()):
        raise BackupError(1, "party_users is not an object of party ids and usernames")
    if len(set(party_users.values())) != len(party_users):
        raise BackupError(1, "party_users names a user for two parties; a user acts for one party")
    return _Header(origin=origin, tree_size=_integer(document["tree_size"], 1, "tree_size"),
                   root_hash=_bytes(document["root_hash"], 32, 1, "root_hash"), keys=keys, verifiers=verifiers,
                   checkpoints=_integer(document["checkpoints"], 1, "checkpoints"),
                   rows=_integer(document["rows"], 1, "rows"),
                   party_users={int(party): username for party, username in party_users.items()})


@dataclass
class _Named:
    """What the entries say of the rows they point to, to check the file's rows against: {id: (line, ...)}."""

    parcels: dict[int, tuple[int, int, dict]] = field(default_factory=dict)  # (line, seq, parcel facts)
    runs: dict[int, list[tuple[int, int, dict]]] = field(default_factory=dict)  # (line, seq, asset.value payload)
    results: dict[int, tuple[int, int, dict]] = field(default_factory=dict)
    asset_parcels: dict[str, int] = field(default_factory=dict)
    parties: set[int] = field(default_factory=set)

    def note(self, line: int, seq: int, kind: str, payload: dict) -> None:
        try:
            if kind == "asset.register":
                self.parcels.setdefault(payload["parcel"]["id"], (line, seq, payload["parcel"]))
                self.asset_parcels[payload["asset"]] = payload["parcel"]["id"]
            elif kind == "asset.value":
                self.runs.setdefault(payload["run"], []).append((line, seq, payload))
                self.results.setdefault(payload["parcel_result"], (line, seq, payload))
            elif kind == "party.create":
                self.parties.add(payload["party"])
        except (KeyError, TypeError) as error:  # a signed but malformed payload: the replay names it too
            raise BackupError(line, f"entry {seq} ({kind}): malformed payload ({type(error).__name__}: {error})"
                              ) from None


def _entries(lines: _Lines, header: _Header, named: _Named) -> Iterator[Entry]:
    """The entry lines, each checked on its own (fields, encodings, bytes, hash, signature under the header's
    keys); `entries_restore` checks the chain between them."""
    checker = EntryChecker(header.verifiers)
    for seq in range(header.tree_size):
        document = lines.next(f"entry {seq}")
        line = lines.number
        _fields(document, ENTRY_FIELDS, line, f"entry {seq}")
        got = _integer(document["seq"], line, f"entry {seq}: seq")
        if got != seq:
            raise BackupError(line, f"entry {got} comes where entry {seq} belongs (a line is missing, repeated or "
                                    "out of order)")
        kind, payload, key_id = document["kind"], document["payload"], document["key_id"]
        try:
            codec.check_kind(kind)
        except codec.EntryPayloadError as error:
            raise BackupError(line, f"entry {seq}: {error}") from None
        if not isinstance(payload, dict):
            raise BackupError(line, f"entry {seq}: payload is not an object")
        _text(key_id, line, f"entry {seq}: key_id")
        timestamp = _entry_timestamp(document["timestamp"], line, seq)
        prev_hash = _bytes(document["prev_hash"], 32, line, f"entry {seq}: prev_hash")
        entry_hash = _bytes(document["hash"], 32, line, f"entry {seq}: hash")
        signature = _bytes(document["signature"], 64, line, f"entry {seq}: signature")
        fault = checker.fault(seq=seq, kind=kind, payload=payload, timestamp=document["timestamp"],
                              prev_hash=prev_hash, stored_hash=entry_hash, signature=signature, key_id=key_id)
        if fault is not None:
            raise BackupError(line, f"entry {seq}: {fault}")
        named.note(line, seq, kind, payload)
        yield Entry(seq=seq, kind=kind, payload=payload, timestamp=timestamp, prev_hash=prev_hash, hash=entry_hash,
                    signature=signature, key_id=key_id)


def _checkpoints(lines: _Lines, header: _Header) -> Iterator[Checkpoint]:
    """The checkpoint lines, each checked: a note signed by a header key, of this origin, whose size and root are
    the line's; `checkpoints_restore` checks each root against the restored tree."""
    for index in range(header.checkpoints):
        document = lines.next(f"checkpoint {index + 1} of {header.checkpoints}")
        line = lines.number
        size = document.get("tree_size")
        what = f"checkpoint {size}" if isinstance(size, int) else f"checkpoint {index + 1} of {header.checkpoints}"
        _fields(document, CHECKPOINT_FIELDS, line, what)
        tree_size = _integer(document["tree_size"], line, f"{what}: tree_size", minimum=1)
        if tree_size > header.tree_size:
            raise BackupError(line, f"{what} is beyond the backup's {header.tree_size} entries")
        root = _bytes(document["root_hash"], 32, line, f"{what}: root_hash")
        try:
            opened = note.open_note(_text(document["note"], line, f"{what}: note"), header.verifiers.values())
            body = note.parse_checkpoint(opened.text)
        except NoteError as error:
            raise BackupError(line, f"{what}: {error}") from None
        if (body.origin, body.tree_size, body.root_hash) != (header.origin, tree_size, root):
            raise BackupError(line, f"{what}: the note says origin {body.origin!r} size {body.tree_size} root "
                                    f"{body.root_hash.hex()}, the line {header.origin!r} {tree_size} {root.hex()}")
        signers = {signature.key_id.hex() for signature in opened.verified}
        if document["key_id"] not in signers:
            raise BackupError(line, f"{what}: key_id {document['key_id']!r}, but the note is signed by "
                                    f"{', '.join(sorted(signers))}")
        yield Checkpoint(tree_size=tree_size, root_hash=root, note_text=document["note"], key_id=document["key_id"],
                         created_at=_moment(document["created_at"], line, f"{what}: created_at"))


def _row_check(obj, named: _Named, line: int) -> None:
    """The row against what the signed entries say of it, when they say something."""
    label = obj._meta.label_lower
    differences = []
    if isinstance(obj, Parcel) and obj.pk in named.parcels:
        entry_line, seq, facts = named.parcels[obj.pk]
        differences.append((seq, entry_line, first_difference(parcel_facts(obj), facts, "parcel")))
    elif isinstance(obj, ParcelResult) and obj.pk in named.results:
        entry_line, seq, payload = named.results[obj.pk]
        low, high = payload["stock_ci95_tC"]
        stated = {"run": obj.run_id, "parcel": obj.parcel_id, "stock_tC": decimal_text(obj.stock_t_c, STOCK_QUANTUM),
                  "stock_tCO2e": decimal_text(obj.stock_co2e_t, STOCK_QUANTUM),
                  "stock_ci95_tC": [decimal_text(obj.stock_ci95_low_t_c, STOCK_QUANTUM),
                                    decimal_text(obj.stock_ci95_high_t_c, STOCK_QUANTUM)]}
        recorded = {"run": payload["run"], "parcel": named.asset_parcels.get(payload["asset"]),
                    "stock_tC": payload["stock_tC"], "stock_tCO2e": payload["stock_tCO2e"],
                    "stock_ci95_tC": [low, high]}
        differences.append((seq, entry_line, first_difference(stated, recorded, "result")))
    elif isinstance(obj, AccountingRun) and obj.pk in named.runs:
        for entry_line, seq, payload in named.runs[obj.pk]:
            stated = {"method_sha256": obj.method_sha256, "input_raster_sha256": list(obj.input_raster_sha256),
                      "code_version": obj.code_version}
            recorded = {name: payload[name] for name in stated}
            for name in ("default_tables_sha256", "normalised_raster_sha256"):  # absent from older entries
                if name in payload:
                    stated[name] = obj.default_tables_sha256 if name == "default_tables_sha256" else list(
                        obj.normalised_raster_sha256)
                    recorded[name] = payload[name]
            amount, currency, per = price_of(payload)
            if per == "tC":
                stated["price_per_tC"] = {"amount": decimal_text(obj.price_per_t_c, PRICE_QUANTUM)
                                          if obj.price_per_t_c is not None else None, "currency": obj.currency}
                recorded["price_per_tC"] = {"amount": amount, "currency": currency}
            differences.append((seq, entry_line, first_difference(stated, recorded, "run")))
    for seq, entry_line, difference in differences:
        if difference is not None:
            raise BackupError(line, f"{label} {obj.pk} differs from what entry {seq} (line {entry_line}) records: "
                                    + difference.replace("the tables have", "the row has").replace(
                                        "the replay of the ledger", f"entry {seq}"))


def _rows(lines: _Lines, header: _Header, named: _Named) -> dict[str, int]:
    """Read, check and save the row lines; return how many of each model."""
    counts = dict.fromkeys(ROW_LABELS, 0)
    seen = {label: set() for label in ROW_LABELS}
    position = 0
    for index in range(header.rows):
        document = lines.next(f"row {index + 1} of {header.rows}")
        line = lines.number
        label = document.get("model")
        if label not in ROW_LABELS:
            raise BackupError(line, f"model {label!r}; a backup's rows are of {', '.join(ROW_LABELS)}")
        if ROW_LABELS.index(label) < position:
            raise BackupError(line, f"a {label} row after the {ROW_LABELS[position]} rows; want the order "
                                    f"{', '.join(ROW_LABELS)}")
        position = ROW_LABELS.index(label)
        _fields(document, ROW_FIELDS, line, f"{label} row")
        if not isinstance(document["fields"], dict):
            raise BackupError(line, f"{label} {document['pk']!r}: fields is not an object")
        try:
            (restored,) = serializers.deserialize("python", [document])
        except (DeserializationError, FieldDoesNotExist, ValidationError, LookupError, AttributeError, ValueError,
                TypeError) as error:
            raise BackupError(line, f"{label} {document['pk']!r}: {error}") from None
        obj = restored.object
        if obj.pk is None or obj.pk in seen[label]:
            raise BackupError(line, f"{label} {obj.pk!r}: no id, or the id again")
        seen[label].add(obj.pk)
        for name in _user_fields(type(obj)):
            if getattr(obj, f"{name}_id") is not None:
                raise BackupError(line, f"{label} {obj.pk}: {name} names a user; a backup carries none")
        try:
            _row_check(obj, named, line)
        except (KeyError, TypeError, ValueError) as error:  # a signed payload the replay will refuse too
            raise BackupError(line, f"{label} {obj.pk}: cannot compare it with the entry that names it "
                                    f"({type(error).__name__}: {error})") from None
        try:
            restored.save()
        except DatabaseError as error:
            raise BackupError(line, f"{label} {obj.pk}: {error}") from None
        counts[label] += 1
    for wanted, label, what in ((named.parcels, "geo.parcel", "parcel"),
                                (named.results, "accounting.parcelresult", "parcel result"),
                                (named.runs, "accounting.accountingrun", "accounting run")):
        for pk, value in sorted(wanted.items()):
            if pk not in seen[label]:
                entry_line, seq, _facts = value[0] if isinstance(value, list) else value
                raise BackupError(entry_line, f"entry {seq} names {what} {pk}, which is not among the file's rows")
    with connection.cursor() as cursor:  # new rows get ids above the restored ones
        for statement in connection.ops.sequence_reset_sql(no_style(), ROW_MODELS):
            cursor.execute(statement)
    return counts


def _tables_in_use() -> list[str]:
    """The tables an import writes, or that only a ledger in use fills, which hold rows: "table (n rows)"."""
    models = [*apps.get_app_config("ledger").get_models(), *ROW_MODELS]
    found = []
    for model in models:
        queryset = model.objects.all()
        if model is LogHead:
            queryset = queryset.filter(tree_size__gt=0)
        count = queryset.count()
        if count:
            found.append(f"{model._meta.db_table} ({count} {'row' if count == 1 else 'rows'})")
    return found


@contextmanager
def _json_nesting_bounded(levels: int = 1000):
    """Keep the recursion limit `levels` above the current depth while a backup is read. The JSON decoder
    recurses in C once per nesting level, checked against that limit, which a dependency raises to 100,000 when
    it is imported (py_ecc, through web3): enough to overflow the C stack on a line nested that deep. Bounded,
    such a line raises RecursionError and is refused like any other line that is not JSON."""
    previous, depth, frame = sys.getrecursionlimit(), 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    sys.setrecursionlimit(min(previous, depth + levels))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def ledger_import(lines: Iterable[bytes]) -> ImportReport:
    """Restore a backup file (its lines, as bytes) into an empty database, in one transaction; raise BackupError
    naming the first bad line (and roll everything back) when any check fails. The module docstring lists the
    checks; docs/ledger.md says what is and is not restored."""
    started = time.perf_counter()
    reader = _Lines(lines)
    named = _Named()
    with _json_nesting_bounded(), transaction.atomic():
        in_use = _tables_in_use()
        if in_use:
            raise BackupError(None, f"the database is not empty: {', '.join(in_use)}; import_ledger restores into "
                                    "an empty database only (migrate a new one)")
        header = _header(reader)
        verifier_keys_restore(keys=header.keys)
        try:
            head = entries_restore(entries=_entries(reader, header, named))
        except LedgerError as error:
            raise BackupError(reader.number, str(error)) from None
        except DatabaseError as error:  # entries go in by batches: the fault is in one up to this line
            raise BackupError(reader.number, f"the database refused the entries up to here: {error}") from None
        root = frontier_root(head.frontier)
        if root != header.root_hash:
            raise BackupError(1, f"root_hash {header.root_hash.hex()}, but the entries give {root.hex()}")
        try:
            checkpoint_count = checkpoints_restore(checkpoints=_checkpoints(reader, header))
        except LedgerError as error:
            raise BackupError(reader.number, str(error)) from None
        except DatabaseError as error:
            raise BackupError(reader.number, f"the database refused the checkpoints: {error}") from None
        rows = _rows(reader, header, named)
        reader.end(header.announces())

        strangers = sorted(set(header.party_users) - named.parties)
        if strangers:
            raise BackupError(1, f"party_users names party {strangers[0]}, which no entry creates")
        users = {user.get_username(): user for user in get_user_model().objects.filter(
            username__in=header.party_users.values())}
        party_users = {party: users[name] for party, name in header.party_users.items() if name in users}
        try:
            registry = registry_tables_rebuild(party_users=party_users)
        except ReplayError as error:
            raise BackupError(None if error.seq is None else error.seq + 2, str(error)) from None
        except DatabaseError as error:
            raise BackupError(None, f"the database refused the registry's rows: {error}") from None
        try:
            connection.check_constraints()
        except DatabaseError as error:
            raise BackupError(None, f"the restored rows do not hold together: {error}") from None
        failure = ledger_verify(jobs=1)
        if failure is not None:
            line = failure.seq + 2 if failure.seq is not None and failure.seq < head.tree_size else None
            raise BackupError(line, f"verify_ledger: {failure}")
    current = [key.vkey for key in header.keys if key.retired_at is None]
    return ImportReport(
        tree_size=head.tree_size, checkpoints=checkpoint_count, rows=rows, registry=registry,
        unlinked_users={party: name for party, name in header.party_users.items() if name not in users},
        current_key=current[0] if current else "", seconds=time.perf_counter() - started)
