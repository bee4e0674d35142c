"""Build an asset's pledge bundle: its projection, every entry that concerns it, proofs to one signed checkpoint.

    bundle = bundle_build(asset=asset)             # a dict; docs/bundle.md and docs/bundle.schema.json say its shape
    data = bundle_bytes(bundle)                    # RFC 8785 canonical JSON: the bytes served and hashed
    bundle_sha256(bundle)                          # what the certificate's QR code carries

The checkpoint is the latest anchored one that covers every entry of the bundle when anchoring exists (`Anchor`
rows of status sent or final), else the latest signed one that covers them, and a new one is signed when none
does. Given the same asset state and checkpoint the bundle is the same bytes, so `?tree_size=N` fetches again the
bundle a certificate names (only the anchor's status may have advanced since).
"""

import base64
import hashlib

from django.db.models import Max

from accounting.models import MethodVersion
from ledger.anchoring.models import Anchor
from ledger.core import codec
from ledger.core.anchor_format import ANCHOR_ON_CHAIN
from ledger.core.canonical_json import canonical_json
from ledger.core.errors import CheckpointNotFoundError, TranslatableMessage, gettext_noop
from ledger.log.models import Checkpoint, Entry, VerifierKey
from ledger.log.services import checkpoint_sign_latest
from ledger.log.tree import tree_consistency_proof, tree_inclusion_proof
from ledger.registry.models import Asset, Party
from ledger.registry.projection import asset_projection, pledge_projection
from ledger.verifier.checks import BUNDLE_FORMAT

CONSISTENCY_PROOFS_MAX = 32  # proofs from this many earlier signed checkpoints ride along (bounded size)
ANCHOR_USABLE_STATUSES = ANCHOR_ON_CHAIN


def _b64(value) -> str:
    return base64.b64encode(bytes(value)).decode()


def _party_ids(asset: Asset, pledges: list[dict]) -> set[int]:
    """Every party the asset's entries name: holders past and present, pledgees, retirement holder."""
    ids = {asset.holder_id}
    ids.update(p["pledgee"] for p in pledges)
    for payload in Entry.objects.for_asset(asset.code).values_list("payload", flat=True):
        for key in ("holder", "from_holder", "to_holder", "pledgee"):
            if isinstance(payload.get(key), int):
                ids.add(payload[key])
    return ids


def _entries(asset: Asset, party_ids: set[int]) -> list[Entry]:
    entries = list(Entry.objects.for_asset(asset.code))
    parties = [e for e in Entry.objects.filter(kind="party.create").order_by("seq")
               if e.payload.get("party") in party_ids]
    return sorted(entries + parties, key=lambda e: e.seq)


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


def bundle_checkpoint(*, min_tree_size: int, tree_size: int | None = None) -> Checkpoint:
    """The checkpoint a bundle proves its entries to: exactly `tree_size` when asked (it must be at least
    `min_tree_size`), else the latest anchored one of at least `min_tree_size` entries, else the latest signed one,
    signing a new one when the latest does not reach `min_tree_size`."""
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
        checkpoint_sign_latest(force=True)
        latest = Checkpoint.objects.order_by("-tree_size").first()
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


def _consistency(checkpoint: Checkpoint) -> list[dict]:
    earlier = Checkpoint.objects.filter(tree_size__lt=checkpoint.tree_size).order_by("-tree_size")
    proofs = []
    for old in earlier[:CONSISTENCY_PROOFS_MAX]:
        hashes = tree_consistency_proof(old_size=old.tree_size, new_size=checkpoint.tree_size)
        proofs.append({"old_size": old.tree_size, "old_root_hash": _b64(old.root_hash),
                       "hashes": [_b64(h) for h in hashes]})
    return proofs


def _method(asset: Asset) -> dict | None:
    if asset.valuation_id is None:
        return None
    version = MethodVersion.objects.filter(parameters_sha256=asset.valuation.method_sha256).first()
    if version is None:
        return None
    return {"kind": version.kind, "parameters": version.parameters}


def bundle_build(*, asset: Asset, tree_size: int | None = None) -> dict:
    """The pledge bundle of `asset` (format BUNDLE_FORMAT) proven to one signed checkpoint (see the module
    docstring for which). Raises CheckpointNotFoundError when `tree_size` names no usable checkpoint."""
    asset = Asset.objects.select_related("parcel", "valuation", "holder").get(pk=asset.pk)
    pledges = [pledge_projection(p) for p in asset.pledges.select_related("asset").order_by("id")]
    party_ids = _party_ids(asset, pledges)
    entries = _entries(asset, party_ids)
    checkpoint = bundle_checkpoint(min_tree_size=entries[-1].seq + 1, tree_size=tree_size)
    proofs = [{"index": e.seq, "hashes": [_b64(h) for h in tree_inclusion_proof(seq=e.seq,
                                                                               tree_size=checkpoint.tree_size)]}
              for e in entries]
    anchor = _anchor_of(checkpoint)
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
        "proofs": proofs,
        "checkpoint": {"tree_size": checkpoint.tree_size, "root_hash": _b64(checkpoint.root_hash),
                       "note": checkpoint.note_text, "created_at": codec.format_timestamp(checkpoint.created_at)},
        "consistency": _consistency(checkpoint),
        "keys": _keys(checkpoint),
        "anchor": None if anchor is None else {
            "chain_id": anchor.chain_id, "tx_hash": anchor.tx_hash, "block_number": anchor.block_number,
            "status": anchor.status, "sender": getattr(anchor, "sender", "") or None},
    }


def bundle_bytes(bundle: dict) -> bytes:
    """The bytes served for `bundle`: its RFC 8785 canonical JSON, so its sha256 can be recomputed anywhere."""
    return canonical_json(bundle)


def bundle_sha256(bundle: dict) -> str:
    return hashlib.sha256(bundle_bytes(bundle)).hexdigest()
