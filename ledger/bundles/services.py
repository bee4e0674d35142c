"""Build an asset's pledge bundle: its projection, every entry that concerns it, proofs to one signed checkpoint.

    basis = bundle_basis(asset=asset)              # which state, which checkpoint: cheap, and names the bundle (etag)
    bundle = bundle_build(asset=asset, basis=basis)  # a dict; docs/bundle.md and docs/bundle.schema.json say its shape
    data = bundle_bytes(bundle)                    # RFC 8785 canonical JSON: the bytes served and hashed
    bundle_sha256(bundle)                          # what the certificate's QR code carries

The checkpoint is the latest anchored one that covers every entry of the bundle when anchoring exists (`Anchor`
rows of status sent or final), else the latest signed one that covers them. Building a bundle never signs: when no
signed checkpoint covers the asset's entries yet, `CheckpointDueError` says so and when to come back, and a
checkpoint is requested the way appends request one (the Celery task, here with a countdown to the end of
LEDGER_CHECKPOINT_INTERVAL_S; without a broker, a timer in this process). Given the same asset state and checkpoint
the bundle is the same bytes, so `?tree_size=N` fetches again the bundle a certificate names (only the anchor's
status may have advanced since), and its basis's `etag` names those bytes before they are built.
"""

import base64
import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

import rfc8785
from celery import current_app as celery_app
from django.db import connections
from django.db.models import Max
from django.db.models.fields.json import KT
from django.utils import timezone

from accounting.models import MethodVersion
from ledger.anchoring.models import Anchor
from ledger.core import codec
from ledger.core.anchor_format import ANCHOR_ON_CHAIN
from ledger.core.canonical_json import canonical_json
from ledger.core.errors import (
    CheckpointDueError,
    CheckpointNotFoundError,
    LedgerError,
    TranslatableMessage,
    gettext_noop,
)
from ledger.log.conf import ledger_setting
from ledger.log.models import Checkpoint, Entry, VerifierKey
from ledger.log.selectors import tree_proofs
from ledger.log.services import CHECKPOINT_TASK_NAME, checkpoint_sign_latest
from ledger.registry.models import Asset, Party, Pledge
from ledger.registry.projection import asset_projection, pledge_projection
from ledger.verifier.checks import BUNDLE_FORMAT

CONSISTENCY_PROOFS_MAX = 32  # proofs from this many earlier signed checkpoints ride along (bounded size)
ANCHOR_USABLE_STATUSES = ANCHOR_ON_CHAIN
CHECKPOINT_PICKUP_S = 2  # what a worker takes to pick a checkpoint request up and sign: added to Retry-After
CHECKPOINT_REQUEST_FAILED_WAIT_S = 5  # after a broker refused a request, the next due answer asks again this soon
logger = logging.getLogger(__name__)


def _b64(value) -> str:
    return base64.b64encode(bytes(value)).decode()


def _party_ids(asset: Asset, pledges: list[dict], asset_entries: list[Entry]) -> set[int]:
    """Every party the asset's entries name: holders past and present, pledgees, retirement holder."""
    ids = {asset.holder_id}
    ids.update(p["pledgee"] for p in pledges)
    for entry in asset_entries:
        for key in ("holder", "from_holder", "to_holder", "pledgee"):
            if isinstance(entry.payload.get(key), int):
                ids.add(entry.payload[key])
    return ids


def _party_entries(party_ids: set[int]) -> list[Entry]:
    """The `party.create` entry of each party in `party_ids`. Such an entry names no asset, so the asset index
    finds it among the few that name none (`payload ->> 'asset' IS NULL`), not by a scan of the whole ledger."""
    return list(Entry.objects.alias(asset_key=KT("payload__asset"))
                .filter(asset_key__isnull=True, kind="party.create", payload__party__in=sorted(party_ids))
                .order_by("seq"))


def _anchor_of(checkpoint: Checkpoint):
    if Anchor is None:
        return None
    anchors = Anchor.objects.filter(checkpoint=checkpoint)
    return anchors.filter(status__in=ANCHOR_USABLE_STATUSES).order_by("-id").first() or anchors.order_by(
        "-id").first()


def verdict_failure_detail(error) -> TranslatableMessage:
    """What a failed verification (`BundleInvalidError`) says, with a lead that is translated: in English exactly
    `str(error)`, "field: reason". The reason stays the offline verifier's own English words."""
    return TranslatableMessage(gettext_noop("%(field)s: %(reason)s"), field=error.field, reason=error.reason)


# --- asking for a checkpoint, never signing one in a read ---------------------------------------------------------

_request_lock = threading.Lock()
_requested_until = [float("-inf")]  # time.monotonic() until which this process's last request stands


def _checkpoint_sign_in_process() -> None:
    """The in-process stand-in for the checkpoint task (no broker): sign if due."""
    try:
        checkpoint_sign_latest()
    except LedgerError:
        logger.exception("signing a requested checkpoint failed")


def _in_process_later(delay_s: float, work) -> None:
    """Run `work` on a daemon timer thread in `delay_s` seconds, on that thread's own database connection, closed
    after it (tests replace this to run nothing behind them)."""

    def run():
        try:
            work()
        finally:
            connections.close_all()  # this thread's connections only

    timer = threading.Timer(delay_s, run)
    timer.daemon = True
    timer.start()


def checkpoint_request(*, latest: Checkpoint | None) -> int:
    """Ask for a checkpoint of the whole ledger without signing one here; return in how many seconds it should be
    signed (what Retry-After says).

    It is asked for as the appends ask, at most one checkpoint per LEDGER_CHECKPOINT_INTERVAL_S: with a broker the
    `ledger.checkpoint_sign_latest` task, sent with a countdown to the end of the interval since `latest`; without
    one, a timer in this process. One request per process stands at a time, so a crowd of reads sends one. A broker
    that refuses is logged, never raised: a read must not fail because a task could not be sent.
    """
    interval_s = ledger_setting("LEDGER_CHECKPOINT_INTERVAL_S")
    age_s = None if latest is None else (timezone.now() - latest.created_at).total_seconds()
    delay_s = 0 if age_s is None or age_s >= interval_s else math.ceil(interval_s - age_s) + 1
    now = time.monotonic()
    with _request_lock:
        if now < _requested_until[0]:
            return max(1, math.ceil(_requested_until[0] - now))
        _requested_until[0] = now + delay_s + CHECKPOINT_PICKUP_S
    try:
        if celery_app.conf.task_always_eager:
            _in_process_later(delay_s, _checkpoint_sign_in_process)
        else:
            celery_app.send_task(CHECKPOINT_TASK_NAME, countdown=delay_s, retry=False)
    except Exception:  # the broker is down or refuses: the answer still says when to come back
        logger.warning("could not request a checkpoint", exc_info=True)
        with _request_lock:
            _requested_until[0] = now + CHECKPOINT_REQUEST_FAILED_WAIT_S
    return delay_s + CHECKPOINT_PICKUP_S


def bundle_checkpoint(*, min_tree_size: int, tree_size: int | None = None) -> Checkpoint:
    """The checkpoint a bundle proves its entries to: exactly `tree_size` when asked (it must be at least
    `min_tree_size`), else the latest anchored one of at least `min_tree_size` entries, else the latest signed one.
    When that does not reach `min_tree_size`, requests a checkpoint (`checkpoint_request`) and raises
    CheckpointDueError saying when to come back: reading a bundle never signs."""
    if tree_size is not None:
        checkpoint = Checkpoint.objects.filter(tree_size=tree_size).first()
        if checkpoint is None or tree_size < min_tree_size:
            raise CheckpointNotFoundError(
                gettext_noop("no signed checkpoint of size %(tree_size)s that covers the asset's entries "
                             "(need >= %(min_tree_size)s)"), tree_size=tree_size, min_tree_size=min_tree_size)
        return checkpoint
    if Anchor is not None:
        anchored = (Anchor.objects.filter(status__in=ANCHOR_USABLE_STATUSES, checkpoint__tree_size__gte=min_tree_size)
                    .aggregate(size=Max("checkpoint__tree_size"))["size"])
        if anchored is not None:
            return Checkpoint.objects.get(tree_size=anchored)
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if latest is None or latest.tree_size < min_tree_size:
        raise CheckpointDueError(min_tree_size=min_tree_size,
                                 latest_tree_size=None if latest is None else latest.tree_size,
                                 retry_after_s=checkpoint_request(latest=latest))
    return latest


def _entry_json(entry: Entry) -> dict:
    return {"seq": entry.seq, "kind": entry.kind, "payload": entry.payload,
            "timestamp": codec.format_timestamp(entry.timestamp), "prev_hash": _b64(entry.prev_hash),
            "hash": _b64(entry.hash), "signature": _b64(entry.signature), "key_id": entry.key_id}


def _keys(checkpoint: Checkpoint) -> list[dict]:
    keys = []
    for key in VerifierKey.objects.filter(created_at__lte=checkpoint.created_at).order_by("created_at", "id"):
        retired = key.retired_at is not None and key.retired_at <= checkpoint.created_at
        keys.append({"vkey": key.vkey, "status": "retired" if retired else "current"})
    if not any(k["vkey"].split("+")[1] == checkpoint.key_id for k in keys):  # a key row written in the same second
        signer = VerifierKey.objects.filter(key_id=checkpoint.key_id).first()
        if signer is not None:
            keys.append({"vkey": signer.vkey, "status": "current"})
    return keys


def _anchor_json(anchor) -> dict | None:
    return None if anchor is None else {
        "chain_id": anchor.chain_id, "tx_hash": anchor.tx_hash, "block_number": anchor.block_number,
        "status": anchor.status, "sender": getattr(anchor, "sender", "") or None}


def _method(asset: Asset) -> dict | None:
    if asset.valuation_id is None:
        return None
    version = MethodVersion.objects.filter(parameters_sha256=asset.valuation.method_sha256).first()
    if version is None:
        return None
    return {"kind": version.kind, "parameters": version.parameters}


@dataclass(frozen=True)
class BundleBasis:
    """What a bundle is made of: the asset's state (the seq of its last entry), the checkpoint its entries are
    proven to and that checkpoint's anchor. The same basis gives the same bytes, so `etag` names them unbuilt."""

    asset: Asset
    last_seq: int
    checkpoint: Checkpoint
    anchor: object | None  # ledger.anchoring.models.Anchor

    @property
    def anchor_json(self) -> dict | None:
        return _anchor_json(self.anchor)

    @property
    def etag(self) -> str:
        anchor = self.anchor_json
        anchor_tag = "none" if anchor is None else hashlib.sha256(canonical_json(anchor)).hexdigest()[:16]
        return f'"b-{self.asset.code}-{self.last_seq}-{self.checkpoint.tree_size}-{anchor_tag}"'


def bundle_basis(*, asset: Asset, tree_size: int | None = None) -> BundleBasis:
    """The basis of `asset`'s bundle (see `bundle_checkpoint` for which checkpoint): a few indexed reads.
    Raises CheckpointNotFoundError when `tree_size` names no usable checkpoint, CheckpointDueError when no signed
    checkpoint covers the asset's entries yet."""
    last_seq = Entry.objects.for_asset(asset.code).order_by("-seq").values_list("seq", flat=True).first()
    checkpoint = bundle_checkpoint(min_tree_size=last_seq + 1, tree_size=tree_size)
    return BundleBasis(asset=asset, last_seq=last_seq, checkpoint=checkpoint, anchor=_anchor_of(checkpoint))


def bundle_build(*, asset: Asset, tree_size: int | None = None, basis: BundleBasis | None = None) -> dict:
    """The pledge bundle of `asset` (format BUNDLE_FORMAT) proven to one signed checkpoint (see the module
    docstring for which), from `basis` when given (`bundle_basis`). Raises CheckpointNotFoundError when
    `tree_size` names no usable checkpoint, CheckpointDueError when none covers the asset yet. A fixed number of
    queries, whatever the number of entries, pledges and checkpoints. Read it in one snapshot
    (`ledger.log.selectors.read_snapshot`) when writes may run beside it, so that tables and entries agree."""
    basis = basis or bundle_basis(asset=asset, tree_size=tree_size)
    checkpoint = basis.checkpoint
    asset = Asset.objects.select_related("parcel", "valuation", "holder", "retirement").get(pk=asset.pk)
    asset_pledges = list(Pledge.objects.filter(asset=asset).order_by("id"))
    for pledge in asset_pledges:
        pledge.asset = asset
    pledges = [pledge_projection(p) for p in asset_pledges]
    asset_entries = list(Entry.objects.for_asset(asset.code).filter(seq__lte=basis.last_seq))
    party_ids = _party_ids(asset, pledges, asset_entries)
    entries = sorted(asset_entries + _party_entries(party_ids), key=lambda e: e.seq)
    earlier = list(Checkpoint.objects.filter(tree_size__lt=checkpoint.tree_size).order_by("-tree_size")
                   [:CONSISTENCY_PROOFS_MAX])
    inclusion, consistency, _ = tree_proofs(inclusions=[(e.seq, checkpoint.tree_size) for e in entries],
                                            consistencies=[(old.tree_size, checkpoint.tree_size) for old in earlier])
    parties = {str(p.id): {"id": p.id, "kind": p.kind, "name": p.name, "uscc": p.uscc}
               for p in Party.objects.filter(id__in=party_ids).order_by("id")}
    return {
        "format": BUNDLE_FORMAT,
        "asset": asset_projection(asset),
        "parties": parties,
        "pledges": pledges,
        "parcel_geometry": asset.parcel.geometry,
        "method": _method(asset),
        "entries": [_entry_json(e) for e in entries],
        "proofs": [{"index": e.seq, "hashes": [_b64(h) for h in hashes]} for e, hashes in zip(entries, inclusion,
                                                                                             strict=True)],
        "checkpoint": {"tree_size": checkpoint.tree_size, "root_hash": _b64(checkpoint.root_hash),
                       "note": checkpoint.note_text, "created_at": codec.format_timestamp(checkpoint.created_at)},
        "consistency": [{"old_size": old.tree_size, "old_root_hash": _b64(old.root_hash),
                         "hashes": [_b64(h) for h in hashes]} for old, hashes in zip(earlier, consistency,
                                                                                     strict=True)],
        "keys": _keys(checkpoint),
        "anchor": basis.anchor_json,
    }


def bundle_bytes(bundle: dict) -> bytes:
    """The bytes served for `bundle`: its RFC 8785 canonical JSON, so its sha256 can be recomputed anywhere.

    Written with the `rfc8785` package, which gives the same bytes as `ledger.core.canonical_json` (the verifier's
    encoder; tests compare the two on many values) about three times faster on a bundle's many strings."""
    return rfc8785.dumps(bundle)


def bundle_sha256(bundle: dict) -> str:
    return hashlib.sha256(bundle_bytes(bundle)).hexdigest()
