"""manage.py export_ledger and import_ledger: a backup restores an empty database to the same ledger, the same
rows it points to and the same registry; a tampered file is refused naming its line and changes nothing."""

import base64
import io
import json
import time
import tracemalloc
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from accounting.models import AccountingRun, MethodVersion, ParcelResult
from geo.models import Parcel, Raster
from ledger.core import codec, merkle, note
from ledger.log.api import CheckpointOutput, EntryOutput
from ledger.log.keys import signing_key_load, signing_key_rotate
from ledger.log.services import checkpoint_sign_latest, entry_append, tree_extend
from ledger.management.commands._backup import _tables_in_use
from ledger.models import (
    Asset,
    AssetSerialCounter,
    Checkpoint,
    Entry,
    LogHead,
    Party,
    Pledge,
    Retirement,
    Transfer,
    TreeNode,
    Valuation,
    VerifierKey,
)
from ledger.registry import projection
from ledger.registry import services as registry
from tests.ledger.registry.conftest import box, evidence, make_parcel, make_run, registry_settings  # noqa: F401

pytestmark = pytest.mark.django_db

COUNTY = "510727"
ROW_MODELS = (Raster, MethodVersion, Parcel, AccountingRun, ParcelResult)
REGISTRY_MODELS = (Party, Asset, Valuation, Pledge, Transfer, Retirement, AssetSerialCounter)


class _Undo(Exception):
    """Raised to roll back everything a block wrote: the database is empty again, as a new one would be."""


def _history(users) -> None:
    """Parties, two assets through every kind of registry entry, a key rotation and a few checkpoints."""
    holder = registry.party_create(kind="collective", name="Guanba village collective", uscc="91350100M000100Y43")
    buyer = registry.party_create(kind="company", name="腾讯科技（深圳）有限公司", uscc="9144030071526726XG")
    bank = registry.party_create(kind="bank", name="Bank A", uscc="914403001922038216", user=users["bank-a"])
    bank2 = registry.party_create(kind="bank", name="Bank B", uscc="91330100799655058B", user=users["bank-b"])
    a = registry.asset_register(parcel=make_parcel("LQ-1", box(104.50, 32.40, 104.51, 32.41)),
                                rights_type="forest_land_ownership", holder=holder, evidence=evidence(),
                                county_code=COUNTY)
    b = registry.asset_register(parcel=make_parcel("LQ-2", box(104.60, 32.40, 104.61, 32.41)),
                                rights_type="grassland_contract", holder=buyer, evidence=evidence("a", "b"),
                                county_code=COUNTY)
    make_parcel("LQ-3", box(104.70, 32.40, 104.71, 32.41))  # in a run, never registered
    checkpoint_sign_latest(force=True)
    for asset in (a, b):
        registry.asset_confirm(asset=asset, county_code=COUNTY)
        run = make_run({asset.parcel: (1000.0, 800.0, 1200.0)}, price_per_t_c=Decimal("12.5"), currency="CNY")
        registry.asset_value(asset=asset, run=run, county_code=COUNTY, price_per_t_co2e=80)
    registry.asset_value(asset=b, run=make_run({b.parcel: (1500.5, 1200.25, 1800.75),
                                                Parcel.objects.get(code="LQ-3"): (10.0, 8.0, 12.0)},
                                               price_per_t_c=Decimal("12.5"), currency="CNY"), county_code=COUNTY)
    signing_key_rotate()
    p1 = registry.pledge_create(asset=a, pledgee=bank, amount=50000, currency="CNY", term_months=24)
    registry.pledge_release(pledge=p1, released_by=bank)
    registry.asset_transfer(asset=a, to_holder=buyer, trade_ref="T-1")
    p2 = registry.pledge_create(asset=a, pledgee=bank2, amount=1000, currency="CNY", term_months=6)
    registry.pledge_enforce(pledge=p2, enforced_by=bank2, nominee=holder)
    registry.pledge_create(asset=b, pledgee=bank, amount=5000, currency="CNY", term_months=12, ltv_limit_pct=40)
    registry.asset_retire(asset=a, beneficiary="Chengdu Metro", reason="offset")
    checkpoint_sign_latest(force=True)


def _fill(until: int, *, checkpoint_every: int = 0) -> None:
    """Entries of a kind the registry ignores, until the ledger has `until`, with a checkpoint every
    `checkpoint_every`. Made as `entry_append` makes them (the same bytes, chain, signature and stored tree
    nodes, from the same tree_extend) but inserted in bulk, so that ten thousand take a second, not a minute;
    verify_ledger, which recomputes the tree its own way, checks them after the round trip."""
    signer = signing_key_load()
    head = LogHead.objects.get(pk=1)
    size, last_hash, frontier = head.tree_size, bytes(head.last_hash), bytes(head.frontier)
    moment = timezone.now()
    entries, nodes = [], []
    while size < until:
        payload = {"asset": f"F-{size % 97}", "n": size, "note": "填充"}
        moment += timedelta(microseconds=1)
        body = codec.entry_bytes(seq=size, kind="test.filler", payload=payload,
                                 timestamp=codec.format_timestamp(moment), prev_hash=last_hash)
        leaf = merkle.leaf_hash(body)
        entries.append(Entry(seq=size, kind="test.filler", payload=payload, timestamp=moment, prev_hash=last_hash,
                             hash=leaf, signature=signer.sign(leaf), key_id=signer.key_id.hex()))
        new_nodes, frontier = tree_extend(frontier, size, leaf)
        nodes += [TreeNode(node_key=key, hash=node) for key, node in new_nodes]
        size, last_hash = size + 1, leaf
        due = checkpoint_every and size % checkpoint_every == 0
        if due or size == until or len(entries) == 2000:
            Entry.objects.bulk_create(entries)
            TreeNode.objects.bulk_create(nodes)
            entries, nodes = [], []
            LogHead.objects.filter(pk=1).update(tree_size=size, last_hash=last_hash, frontier=frontier)
        if due:
            checkpoint_sign_latest(force=True)


def _rows(model, *exclude: str) -> list[dict]:
    """Every row of `model` as Django serializes it, by id, without the fields named, and naming its asset (if it
    has one) by code: asset ids are the database's own, which no entry records."""
    codes = dict(Asset.objects.values_list("id", "code"))
    records = serializers.serialize("python", model.objects.order_by("pk"))
    for record in records:
        for name in exclude:
            record["fields"].pop(name, None)
        if "asset" in record["fields"]:
            record["fields"]["asset"] = codes[record["fields"]["asset"]]
    return records


def _database() -> dict:
    """Everything a restore must reproduce, in comparable values."""
    return {
        "entries": [(e.seq, e.kind, e.payload, e.timestamp, bytes(e.prev_hash), bytes(e.hash), bytes(e.signature),
                     e.key_id) for e in Entry.objects.order_by("seq")],
        "nodes": [(n.node_key, bytes(n.hash)) for n in TreeNode.objects.order_by("node_key")],
        "head": [(h.tree_size, bytes(h.last_hash), bytes(h.frontier)) for h in LogHead.objects.all()],
        "checkpoints": [(c.tree_size, bytes(c.root_hash), c.note_text, c.key_id, c.created_at)
                        for c in Checkpoint.objects.order_by("tree_size")],
        "keys": list(VerifierKey.objects.order_by("created_at").values_list("name", "key_id", "vkey", "created_at",
                                                                           "retired_at")),
        "projection": projection.registry_projection(),
        "parties": list(Party.objects.order_by("id").values_list("id", "kind", "name", "uscc", "user_id")),
        "assets": list(Asset.objects.order_by("id").values_list(
            "code", "county_code", "year", "sequence", "parcel_id", "rights_type", "holder_id", "evidence", "status",
            "valuation_id")),
        **{model._meta.db_table: _rows(model, "created_at", "created_by", "closed_at")
           for model in (Valuation, Pledge, Transfer, Retirement)},
        "counters": list(AssetSerialCounter.objects.order_by("county_code", "year").values_list(
            "county_code", "year", "last_sequence")),
        **{model._meta.db_table: _rows(model, "created_by", "uploaded_by") for model in ROW_MODELS},
    }


def _export(path: Path) -> str:
    out = io.StringIO()
    call_command("export_ledger", str(path), stdout=out)
    return out.getvalue()


def _import(path: Path) -> str:
    out = io.StringIO()
    call_command("import_ledger", str(path), stdout=out)
    return out.getvalue()


def _verify() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", "--jobs", "1", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def users(api_user):
    """The banks' API users. They stay when `_Undo` empties the ledger, as users made on a new database would."""
    return {name: api_user("bank", username=name)[0] for name in ("bank-a", "bank-b")}


@pytest.fixture
def backup(users, tmp_path, settings):
    """Factory: backup(entries) builds a registry history filled up to `entries` entries, exports it, empties the
    database again and returns (file, what the database held)."""
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 3600

    def make(entries: int = 60, *, checkpoint_every: int = 0) -> tuple[Path, dict]:
        path = tmp_path / "ledger.ndjson"
        try:
            with transaction.atomic():
                _history(users)
                _fill(entries, checkpoint_every=checkpoint_every)
                checkpoint_sign_latest(force=True)
                _export(path)
                original = _database()
                raise _Undo
        except _Undo:
            pass
        assert _tables_in_use() == []
        return path, original

    return make


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, documents: list[dict]) -> None:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")


def test_round_trip_of_10000_entries(backup):
    path, original = backup(10_000, checkpoint_every=2500)
    assert len(original["entries"]) == 10_000 and len(original["checkpoints"]) >= 6
    started = time.perf_counter()
    output = _import(path)
    elapsed_s = time.perf_counter() - started
    assert output.startswith("imported and verified 10000 entries"), output
    restored = _database()
    for name, value in original.items():
        assert restored[name] == value, name
    code, output = _verify()
    assert code == 0, output
    assert elapsed_s < 60


def test_the_file_holds_the_api_shapes_and_the_rows_entries_point_to(backup):
    path, original = backup(60)
    lines = _lines(path)
    header = lines[0]
    assert (header["format"], header["version"], header["origin"]) == ("tanhui-ledger-backup", 1,
                                                                       "tanhui.local/test-registry")
    assert header["tree_size"] == 60 and header["checkpoints"] == len(original["checkpoints"]) == 3
    assert [key["current"] for key in header["keys"]] == [False, True]  # rotated once
    assert header["party_users"] == {str(p): name for p, name in zip(
        [p[0] for p in original["parties"] if p[4] is not None], ["bank-a", "bank-b"], strict=True)}
    _import(path)
    entries = lines[1:61]
    assert entries == [EntryOutput(e).data for e in Entry.objects.order_by("seq")]
    checkpoints = lines[61:61 + header["checkpoints"]]
    assert checkpoints == [CheckpointOutput(c).data for c in Checkpoint.objects.order_by("tree_size")]
    rows = lines[61 + header["checkpoints"]:]
    assert len(rows) == header["rows"]
    assert [r["model"] for r in rows] == ["geo.raster", "accounting.methodversion", *["geo.parcel"] * 3,
                                          *["accounting.accountingrun"] * 3, *["accounting.parcelresult"] * 4]
    assert not any(r["fields"].get("created_by") or r["fields"].get("uploaded_by") for r in rows)


def test_restored_registry_works_on(backup, users, settings):
    """After a restore, the registry appends where the ledger left off and new rows get new ids."""
    path, original = backup(60)
    _import(path)
    assert Party.objects.get(name="Bank A").user == users["bank-a"]
    asset = Asset.objects.get(code=original["assets"][1][0])
    before = Pledge.objects.count()
    pledge = registry.pledge_create(asset=asset, pledgee=Party.objects.get(name="Bank B"), amount=100,
                                    currency="CNY", term_months=3)
    assert pledge.id == max(p["pk"] for p in original["registry_pledge"]) + 1 and Pledge.objects.count() == before + 1
    party = registry.party_create(kind="individual", name="Li Wei")
    assert party.id == max(p[0] for p in original["parties"]) + 1
    parcel = make_parcel("LQ-9", box(104.80, 32.40, 104.81, 32.41))
    assert parcel.id == max(p["pk"] for p in original["geo_parcel"]) + 1
    registry.asset_register(parcel=parcel, rights_type="forest_land_use", holder=party, evidence=evidence(),
                            county_code=COUNTY)
    assert Entry.objects.count() == 63
    checkpoint_sign_latest(force=True)
    code, output = _verify()
    assert code == 0, output


def test_restored_times_are_the_entries_and_assets_are_numbered_from_1(backup):
    path, _original = backup(40)
    _import(path)
    times = dict(Entry.objects.filter(kind="pledge.release").values_list("payload__pledge", "timestamp"))
    for pledge_id, timestamp in times.items():
        assert Pledge.objects.get(id=pledge_id).closed_at == timestamp
    register = Entry.objects.filter(kind="asset.register").order_by("seq")
    assets = Asset.objects.order_by("id")
    assert [(a.id, a.code, a.created_at) for a in assets] == [
        (number, e.payload["asset"], e.timestamp) for number, e in enumerate(register, start=1)]


def test_stdout_and_stdin(backup, tmp_path, monkeypatch):
    path, _ = backup(30)
    out, err = io.StringIO(), io.StringIO()
    try:
        with transaction.atomic():
            _import(path)
            call_command("export_ledger", "-", stdout=out, stderr=err)
            raise _Undo
    except _Undo:
        pass
    assert err.getvalue().startswith("exported 30 entries")
    piped, written = _lines_of(out.getvalue()), _lines(path)
    assert piped[1:] == written[1:] and piped[0]["root_hash"] == written[0]["root_hash"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    output = io.StringIO()
    call_command("import_ledger", "-", stdout=output)
    assert output.getvalue().startswith("imported and verified 30 entries")


def _lines_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_export_memory_does_not_grow_with_the_ledger(users, tmp_path):
    """Peak memory of an export (Python allocations) at 4,000 and at 12,000 entries: about the same (two
    chunks of 2,000 rows at a time), while the file grows threefold."""
    peaks, sizes = [], []
    with transaction.atomic():
        _history(users)
        for size in (4000, 12_000):
            _fill(size)
            tracemalloc.start()
            _export(tmp_path / f"{size}.ndjson")
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            sizes.append((tmp_path / f"{size}.ndjson").stat().st_size)
    assert sizes[1] > 2.8 * sizes[0]
    assert peaks[1] < 1.2 * peaks[0], (peaks, sizes)


# --- refusals --------------------------------------------------------------------------------------------------


def _refused(path: Path) -> str:
    with pytest.raises(CommandError) as refusal:
        _import(path)
    assert _tables_in_use() == []
    message = str(refusal.value)
    assert message.startswith("import refused, nothing was changed: ")
    return message.removeprefix("import refused, nothing was changed: ")


def _first_checkpoint_line(lines: list[dict]) -> int:
    return 1 + lines[0]["tree_size"]  # 0-based index in `lines`


def _tamper_payload(lines):
    lines[8]["payload"]["stock_tC"] = "1000.000001"  # entry 7 (line 9), asset a's valuation
    return 9, "entry 7: hash "


def _tamper_signature(lines):
    lines[21]["signature"] = lines[22]["signature"]
    return 22, "entry 20: signature does not verify under key tanhui.local/test-registry+"


def _tamper_hash_and_bytes(lines):
    lines[5]["hash"] = base64.b64encode(bytes(32)).decode()
    return 6, "entry 4: hash 0000000000000000000000000000000000000000000000000000000000000000 stored, but"


def _drop_line(lines):
    del lines[12]  # entry 11
    return 13, "entry 12 comes where entry 11 belongs (a line is missing, repeated or out of order)"


def _reorder_lines(lines):
    lines[30], lines[31] = lines[31], lines[30]
    return 31, "entry 30 comes where entry 29 belongs"


def _rechain(lines):
    """An entry whose prev_hash was changed and re-signed is still refused: the chain breaks."""
    signer = signing_key_load()
    entry = lines[10]
    entry["prev_hash"] = base64.b64encode(bytes(32)).decode()
    body = codec.entry_bytes(seq=9, kind=entry["kind"], payload=entry["payload"], timestamp=entry["timestamp"],
                             prev_hash=bytes(32))
    leaf = merkle.leaf_hash(body)
    entry["hash"], entry["signature"] = base64.b64encode(leaf).decode(), base64.b64encode(signer.sign(leaf)).decode()
    entry["key_id"] = signer.key_id.hex()
    return 11, "entry 9: prev_hash 0000000000000000000000000000000000000000000000000000000000000000 is not entry 8"


def _wrong_checkpoint_root(lines):
    index = _first_checkpoint_line(lines) + 1
    lines[index]["root_hash"] = base64.b64encode(b"\x02" * 32).decode()
    return index + 1, f"checkpoint {lines[index]['tree_size']}: the note says origin"


def _wrong_checkpoint_signed(lines):
    """A note signed with the registry's own key but over a wrong root: the entries give another."""
    index = _first_checkpoint_line(lines)
    size = lines[index]["tree_size"]
    signer = signing_key_load()
    text = note.format_checkpoint(note.Checkpoint("tanhui.local/test-registry", size, b"\x03" * 32))
    lines[index].update(root_hash=base64.b64encode(b"\x03" * 32).decode(), note=note.sign_note(text, [signer]),
                        key_id=signer.key_id.hex())
    return index + 1, f"checkpoint {size} root {'03' * 32}, but the entries give "


def _dropped_checkpoint(lines):
    del lines[_first_checkpoint_line(lines)]
    return _first_checkpoint_line(lines) + 3, ("checkpoint 3 of 3: fields created_at, key_id, note, root_hash, "
                                               "tree_size missing")


def _row(lines, model) -> tuple[int, int]:
    """The index in `lines` and the id of the first row of `model`."""
    index = next(i for i, line in enumerate(lines) if line.get("model") == model)
    return index, lines[index]["pk"]


def _wrong_parcel(lines):
    index, pk = _row(lines, "geo.parcel")  # LQ-1, which entry 4 registers
    lines[index]["fields"]["geometry"]["coordinates"][0][1][0] += 0.001
    return index + 1, f"geo.parcel {pk} differs from what entry 4 (line 6) records: parcel.geometry_sha256: the row has"


def _wrong_result(lines):
    index, pk = _row(lines, "accounting.parcelresult")  # asset a's, which entry 7 values it with
    lines[index]["fields"]["stock_t_c"] = 1000.5
    return index + 1, (f"accounting.parcelresult {pk} differs from what entry 7 (line 9) records: result.stock_tC: "
                       "the row has '1000.500000', entry 7 gives '1000.000000'")


def _wrong_run(lines):
    index, pk = _row(lines, "accounting.accountingrun")
    lines[index]["fields"]["method_sha256"] = "ef" * 32
    return index + 1, f"accounting.accountingrun {pk} differs from what entry 7 (line 9) records: run.method_sha256"


def _missing_parcel(lines):
    index, pk = _row(lines, "geo.parcel")
    del lines[index]
    lines[0]["rows"] -= 1
    return 6, f"entry 4 names parcel {pk}, which is not among the file's rows"


def _user_in_a_row(lines):
    index, pk = _row(lines, "accounting.accountingrun")
    lines[index]["fields"]["created_by"] = 1
    return index + 1, f"accounting.accountingrun {pk}: created_by names a user; a backup carries none"


def _row_of_unknown_shape(lines):
    index, pk = _row(lines, "geo.parcel")
    lines[index]["fields"]["colour"] = "green"
    return index + 1, f"geo.parcel {pk}: Parcel has no field named 'colour'"


def _rows_out_of_order(lines):
    index, _pk = _row(lines, "geo.raster")
    lines.append(lines.pop(index))
    return len(lines), "a geo.raster row after the accounting.parcelresult rows"


def _extra_line(lines):
    lines.append({"seq": 60})
    return len(lines), "a line after the last one the header announces (60 entries, 3 checkpoints, 12 rows)"


def _wrong_root_in_header(lines):
    lines[0]["root_hash"] = base64.b64encode(bytes(32)).decode()
    return 1, "root_hash 0000000000000000000000000000000000000000000000000000000000000000, but the entries give"


def _other_origin(lines):
    lines[0]["origin"] = "tanhui.local/elsewhere"
    return 1, "the backup is of the log 'tanhui.local/elsewhere', but this registry's LEDGER_ORIGIN is"


def _unknown_key(lines):
    lines[0]["keys"] = lines[0]["keys"][1:]  # entries before the rotation name a key the header lacks
    return 2, "entry 0: signed by key"


def _truncated(lines):
    del lines[40:]
    return 41, "the file ends where entry 39 belongs"


@pytest.mark.parametrize("tamper", [
    _tamper_payload, _tamper_signature, _tamper_hash_and_bytes, _drop_line, _reorder_lines, _rechain,
    _wrong_checkpoint_root, _wrong_checkpoint_signed, _dropped_checkpoint, _wrong_parcel, _wrong_result, _wrong_run,
    _missing_parcel, _user_in_a_row, _row_of_unknown_shape, _rows_out_of_order, _extra_line, _wrong_root_in_header,
    _other_origin, _unknown_key, _truncated,
], ids=lambda f: f.__name__.strip("_"))
def test_a_tampered_file_is_refused_naming_its_line(backup, tamper):
    path, _ = backup(60)
    lines = _lines(path)
    line, want = tamper(lines)
    _write(path, lines)
    message = _refused(path)
    assert message.startswith(f"line {line}: {want}"), message


def test_an_empty_ledger_round_trips(tmp_path):
    path = tmp_path / "empty.ndjson"
    _export(path)
    header, = _lines(path)
    assert (header["tree_size"], header["checkpoints"], header["rows"], header["keys"]) == (0, 0, 0, [])
    assert _import(path).startswith("imported and verified 0 entries, 0 checkpoints")
    assert _tables_in_use() == []


def test_a_file_that_is_not_a_backup(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_text('{"format": "something-else"}\n')
    assert _refused(path) == "line 1: format 'something-else', want 'tanhui-ledger-backup': not a ledger backup"
    path.write_text("not json\n")
    assert _refused(path).startswith("line 1: the header: not JSON")
    path.write_text("")
    assert _refused(path) == "line 1: the file ends where the header belongs"


def test_a_line_nested_too_deep_is_refused_not_a_crash(tmp_path):
    """300,000 nested arrays: refused as not JSON, whatever recursion limit the process runs with."""
    path = tmp_path / "deep.ndjson"
    path.write_text('{"format": ' + "[" * 300_000 + "]" * 300_000 + "}\n")
    assert _refused(path).startswith("line 1: the header: not JSON (maximum recursion depth exceeded")


def test_a_replay_that_breaks_a_registry_rule_names_its_line(backup):
    """A well-signed entry that the registry's rules refuse (here: re-signed as a second confirmation)."""
    path, _ = backup(10)
    lines = _lines(path)
    signer = signing_key_load()
    header = lines[0]
    entries = lines[1:1 + header["tree_size"]]
    confirm = next(e for e in entries if e["kind"] == "asset.confirm")
    extra = {"seq": header["tree_size"], "kind": "asset.confirm", "payload": confirm["payload"],
             "timestamp": entries[-1]["timestamp"], "prev_hash": entries[-1]["hash"], "key_id": signer.key_id.hex()}
    body = codec.entry_bytes(seq=extra["seq"], kind=extra["kind"], payload=extra["payload"],
                             timestamp=extra["timestamp"], prev_hash=base64.b64decode(extra["prev_hash"]))
    leaf = merkle.leaf_hash(body)
    extra.update(hash=base64.b64encode(leaf).decode(), signature=base64.b64encode(signer.sign(leaf)).decode())
    header["tree_size"] += 1
    leaves = [base64.b64decode(e["hash"]) for e in [*entries, extra]]
    header["root_hash"] = base64.b64encode(merkle.root(leaves)).decode()
    _write(path, [header, *entries, extra, *lines[1 + len(entries):]])
    message = _refused(path)
    assert message.startswith(f"line {extra['seq'] + 2}: entry {extra['seq']} (asset.confirm): asset "), message


def test_import_into_a_database_that_is_not_empty_is_refused(backup):
    path, _ = backup(30)
    registry.party_create(kind="individual", name="Li Wei")
    with pytest.raises(CommandError) as refusal:
        _import(path)
    assert str(refusal.value) == (
        "import refused, nothing was changed: the database is not empty: ledger_entry (1 row), ledger_treenode "
        "(1 row), ledger_loghead (1 row), ledger_verifierkey (1 row), registry_party (1 row); import_ledger "
        "restores into an empty database only (migrate a new one)")
    assert Entry.objects.count() == Party.objects.count() == 1


def test_command_line_errors_change_nothing(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read .*missing\.ndjson: No such file or directory"):
        _import(tmp_path / "missing.ndjson")
    with pytest.raises(CommandError, match=r"directory .*nowhere does not exist"):
        _export(tmp_path / "nowhere" / "x.ndjson")
    with pytest.raises(CommandError, match="is a directory"):
        _export(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ledger.ndjson"
    path.write_text("the previous backup\n")
    entry_append(kind="test.filler", payload={"n": 0})

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("ledger.management.commands._backup.CheckpointOutput", broken)
    checkpoint_sign_latest(force=True)
    with pytest.raises(RuntimeError, match="disk full"):
        _export(path)
    assert path.read_text() == "the previous backup\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.ndjson", "var"]  # var/: the signing key


# --- a real empty database: flush between export and import -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_round_trip_through_a_flushed_database(users, tmp_path, settings):
    """Export outside any transaction (PostgreSQL: the REPEATABLE READ snapshot), flush the whole database as a
    new one would be (users too), import, and verify."""
    settings.LEDGER_CHECKPOINT_INTERVAL_S = 3600
    _history(users)
    _fill(300, checkpoint_every=100)
    path = tmp_path / "ledger.ndjson"
    _export(path)
    original = _database()
    call_command("flush", interactive=False, verbosity=0)
    assert _tables_in_use() == [] and get_user_model().objects.count() == 0
    output = _import(path)
    bank_a = next(p[0] for p in original["parties"] if p[2] == "Bank A")
    assert f"party {bank_a} acted through user 'bank-a', who does not exist here: left unlinked" in output
    restored = _database()
    original["parties"] = [(*p[:4], None) for p in original["parties"]]
    for name, value in original.items():
        assert restored[name] == value, name
    code, output = _verify()
    assert code == 0, output


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_restored_tables_stay_append_only(users, tmp_path, settings):
    """On PostgreSQL the append-only triggers let the import's INSERTs through and still refuse changes after."""
    from django.db.utils import IntegrityError

    settings.LEDGER_CHECKPOINT_INTERVAL_S = 3600
    _history(users)
    _fill(100)
    path = tmp_path / "ledger.ndjson"
    _export(path)
    call_command("flush", interactive=False, verbosity=0)
    _import(path)
    for sql in ("UPDATE ledger_entry SET kind = 'x' WHERE seq = 1", "DELETE FROM ledger_treenode",
                "UPDATE ledger_checkpoint SET note_text = ''"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    registry.party_create(kind="individual", name="Li Wei")
    code, output = _verify()
    assert code == 0, output
