"""What the registry does to anchor its checkpoints on chain: create, send and track `Anchor` rows.

    anchoring_tick()                 # the beat task: the three steps below for whatever is due
    anchor_track(anchor=a)           # receipt and confirmations; final, or back to pending when dropped
    anchor_latest_checkpoint()       # a pending Anchor for the latest checkpoint, if the tree grew
    anchor_send(anchor=a)            # sign locally and broadcast; faults leave it pending with a reason

Settings (config/settings/base.py): ANCHOR_RPC_URL (unset: anchoring is off), ANCHOR_KEY_FILE, ANCHOR_TO,
ANCHOR_CONFIRMATIONS, ANCHOR_INTERVAL_S, ANCHOR_GAS_LIMIT, ANCHOR_GAS_MARGIN, ANCHOR_RPC_TIMEOUT_S,
ANCHOR_RETRY_BASE_S, ANCHOR_RETRY_MAX_S, ANCHOR_DROPPED_AFTER_S. docs/anchoring.md explains them.

No database transaction is held open across an RPC call: an anchor is claimed by a conditional UPDATE (only one
of several concurrent ticks wins it), the call is made, and the outcome is saved. Every RPC call has a short
timeout, so a slow or dead node delays only the anchoring task.
"""

import logging
import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import TransactionNotFound

from ledger.anchoring import chain
from ledger.anchoring.chain import AnchorConfigError, AnchorError
from ledger.anchoring.models import Anchor
from ledger.log.models import Checkpoint

logger = logging.getLogger(__name__)

UNFINISHED = (Anchor.Status.PENDING, Anchor.Status.SENT)
OFF_REASON = "anchoring is off: ANCHOR_RPC_URL is unset"


def anchoring_enabled() -> bool:
    return bool(settings.ANCHOR_RPC_URL)


def anchor_key_file() -> Path:
    return Path(settings.ANCHOR_KEY_FILE) if settings.ANCHOR_KEY_FILE else settings.VAR_DIR / "keys" / "anchor.key"


def anchor_account_load() -> LocalAccount:
    """The local account that signs anchors, from ANCHOR_KEY_FILE (64 hex digits).

    When ANCHOR_KEY_FILE is unset, VAR_DIR/keys/anchor.key is used and created (mode 0600) on first use: fund
    its address (the anchors API shows it) before anchors can be sent. A configured file that is missing is an
    error, never silently replaced.
    """
    path = anchor_key_file()
    if not path.exists():
        if settings.ANCHOR_KEY_FILE:
            raise AnchorConfigError(f"ANCHOR_KEY_FILE {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Account.create().key.hex() + "\n")
        logger.info("generated an anchor key at %s", path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise AnchorConfigError(f"cannot read ANCHOR_KEY_FILE {path}: {exc}") from None
    return chain.account_from_key_text(text)


def _web3():
    return chain.web3_for(settings.ANCHOR_RPC_URL, timeout_s=settings.ANCHOR_RPC_TIMEOUT_S)


def retry_delay_s(faults: int) -> int:
    """Seconds to wait after the `faults`-th consecutive fault: base × 2**(faults − 1), at most the maximum."""
    exponent = max(faults - 1, 0)
    return min(settings.ANCHOR_RETRY_BASE_S * 2 ** min(exponent, 32), settings.ANCHOR_RETRY_MAX_S)


# --- create ---------------------------------------------------------------------------------------------------


def anchor_latest_checkpoint() -> Anchor | None:
    """A new pending Anchor for the latest signed checkpoint; None when there is nothing to anchor.

    Nothing to anchor: anchoring is off, no checkpoint is signed, the latest anchor already covers the latest
    checkpoint, or an anchor is still unfinished (pending or sent: one transaction in flight at a time, so nonces
    do not clash and a newer root supersedes the queue). Two concurrent calls create one anchor: the checkpoint
    row is locked, and the unique constraint on `checkpoint` refuses a second row (the loser returns None).
    """
    if not anchoring_enabled():
        return None
    try:
        with transaction.atomic():
            checkpoint = Checkpoint.objects.select_for_update().order_by("-tree_size").first()
            if checkpoint is None:
                return None
            if Anchor.objects.filter(status__in=UNFINISHED).exists():
                return None
            last = Anchor.objects.order_by("-tree_size").first()
            if last is not None and last.tree_size >= checkpoint.tree_size:
                return None
            return Anchor.objects.create(checkpoint=checkpoint, tree_size=checkpoint.tree_size,
                                         root_hash=bytes(checkpoint.root_hash), next_attempt_at=timezone.now())
    except IntegrityError:  # another tick anchored this checkpoint first
        return None


# --- send -----------------------------------------------------------------------------------------------------


def _claim(anchor: Anchor, status: str) -> bool:
    """Take `anchor` for one attempt if it is still in `status` and due; False when another worker has it."""
    now = timezone.now()
    lease_s = 4 * settings.ANCHOR_RPC_TIMEOUT_S + 10  # longer than one attempt's RPC calls
    counted = {"attempts": F("attempts") + 1} if status == Anchor.Status.PENDING else {}
    claimed = Anchor.objects.filter(pk=anchor.pk, status=status, next_attempt_at__lte=now).update(
        next_attempt_at=now + timedelta(seconds=lease_s), **counted)
    if claimed:
        anchor.refresh_from_db()
    return bool(claimed)


def _fault(anchor: Anchor, reason: str) -> Anchor:
    """Record a fault: the anchor keeps its status, says why, and waits base × 2**(faults − 1) seconds."""
    anchor.reason = reason
    anchor.faults += 1
    anchor.next_attempt_at = timezone.now() + timedelta(seconds=retry_delay_s(anchor.faults))
    anchor.save(update_fields=["reason", "faults", "next_attempt_at", "updated_at"])
    logger.warning("anchor of checkpoint %s: %s (fault %s in a row, next attempt at %s)", anchor.tree_size, reason,
                   anchor.faults, anchor.next_attempt_at.isoformat())
    return anchor


def anchor_send(*, anchor: Anchor) -> Anchor:
    """Sign the anchor's transaction locally and broadcast it; the anchor becomes "sent".

    Only a pending anchor that is due is sent (otherwise it is returned unchanged). The transaction's hash and
    nonce are saved before broadcasting, so that if the broadcast times out but reached the node, the next
    attempt finds the transaction instead of sending a second one. Any fault (RPC down or slow, nonce clash,
    insufficient funds, a bad key file) leaves the anchor pending with the reason and a later `next_attempt_at`.
    """
    if not anchoring_enabled() or not _claim(anchor, Anchor.Status.PENDING):
        return anchor
    try:
        w3 = _web3()
        account = anchor_account_load()
        if anchor.tx_hash and chain.transaction_known(w3, anchor.tx_hash):
            return _mark_sent(anchor)  # the last broadcast did reach the node
        data = chain.anchor_data(anchor.tree_size, bytes(anchor.root_hash))
        gas_limit = chain.anchor_gas_limit(data, margin_gas=settings.ANCHOR_GAS_MARGIN,
                                           fixed_gas=settings.ANCHOR_GAS_LIMIT or None)
        signed = chain.anchor_transaction_sign(w3, account, data, to=settings.ANCHOR_TO, gas_limit=gas_limit)
        anchor.chain_id = w3.eth.chain_id
        anchor.sender = account.address
        anchor.nonce = signed.nonce
        anchor.tx_hash = signed.tx_hash
        anchor.block_number = None
        anchor.save(update_fields=["chain_id", "sender", "nonce", "tx_hash", "block_number", "updated_at"])
        chain.anchor_transaction_send(w3, signed)
    except AnchorError as exc:
        return _fault(anchor, f"configuration: {exc}")
    except Exception as exc:  # RPC and node refusals come in many types; each is recorded, none stops the tick
        return _fault(anchor, chain.fault_reason(exc))
    return _mark_sent(anchor)


def _mark_sent(anchor: Anchor) -> Anchor:
    anchor.status = Anchor.Status.SENT
    anchor.reason = ""
    anchor.faults = 0
    anchor.sent_at = timezone.now()
    anchor.next_attempt_at = anchor.sent_at
    anchor.save(update_fields=["status", "reason", "faults", "sent_at", "next_attempt_at", "updated_at"])
    logger.info("anchor of checkpoint %s sent: %s (nonce %s)", anchor.tree_size, anchor.tx_hash, anchor.nonce)
    return anchor


# --- track ----------------------------------------------------------------------------------------------------


def anchor_track(*, anchor: Anchor) -> Anchor:
    """Follow a sent anchor's transaction: record its block, make it final after ANCHOR_CONFIRMATIONS blocks.

    Confirmations count the anchor's own block: with ANCHOR_CONFIRMATIONS = 3, a transaction in block 10 is
    final when the head reaches block 12. If the transaction is no longer on chain (its receipt disappeared
    after a reorganisation, or the node has forgotten it: not found for ANCHOR_DROPPED_AFTER_S after sending),
    the anchor goes back to pending and is sent again with a fresh nonce. Receipt status 0 fails it.
    """
    if not anchoring_enabled() or not _claim(anchor, Anchor.Status.SENT):
        return anchor
    try:
        w3 = _web3()
        try:
            receipt = w3.eth.get_transaction_receipt(anchor.tx_hash)
        except TransactionNotFound:
            receipt = None
        if receipt is None:
            return _track_unmined(w3, anchor)
        if receipt["status"] != 1:
            anchor.status = Anchor.Status.FAILED
            anchor.block_number = receipt["blockNumber"]
            anchor.reason = (f"transaction {anchor.tx_hash} failed in block {receipt['blockNumber']} "
                             f"(receipt status {receipt['status']}, gas used {receipt['gasUsed']})")
            anchor.save(update_fields=["status", "block_number", "reason", "updated_at"])
            logger.error("anchor of checkpoint %s: %s", anchor.tree_size, anchor.reason)
            return anchor
        head_block = w3.eth.block_number
    except Exception as exc:
        return _fault(anchor, chain.fault_reason(exc))
    anchor.block_number = receipt["blockNumber"]
    anchor.reason = ""
    anchor.faults = 0
    anchor.next_attempt_at = timezone.now()
    confirmations = head_block - anchor.block_number + 1
    if confirmations >= settings.ANCHOR_CONFIRMATIONS:
        anchor.status = Anchor.Status.FINAL
        anchor.final_at = timezone.now()
        logger.info("anchor of checkpoint %s final in block %s", anchor.tree_size, anchor.block_number)
    anchor.save(update_fields=["block_number", "reason", "faults", "next_attempt_at", "status", "final_at",
                               "updated_at"])
    return anchor


def _track_unmined(w3, anchor: Anchor) -> Anchor:
    known = chain.transaction_known(w3, anchor.tx_hash)
    was_mined = anchor.block_number is not None
    waited_s = (timezone.now() - anchor.sent_at).total_seconds() if anchor.sent_at else float("inf")
    if known and not was_mined:  # waiting in the pool
        anchor.next_attempt_at = timezone.now()
        anchor.save(update_fields=["next_attempt_at", "updated_at"])
        return anchor
    if known:  # reorganised out of its block, back in the pool: wait for it to be mined again
        reason = f"transaction {anchor.tx_hash} left block {anchor.block_number} (reorganisation); waiting again"
        anchor.block_number = None
        anchor.reason = reason
        anchor.next_attempt_at = timezone.now()
        anchor.save(update_fields=["block_number", "reason", "next_attempt_at", "updated_at"])
        return anchor
    if not was_mined and waited_s < settings.ANCHOR_DROPPED_AFTER_S:  # perhaps not yet propagated
        anchor.next_attempt_at = timezone.now()
        anchor.save(update_fields=["next_attempt_at", "updated_at"])
        return anchor
    where = f"after block {anchor.block_number}" if was_mined else f"{waited_s:.0f} s after sending"
    anchor.reason = f"transaction {anchor.tx_hash} (nonce {anchor.nonce}) no longer on chain {where}; sending again"
    anchor.status = Anchor.Status.PENDING
    anchor.tx_hash = ""
    anchor.nonce = None
    anchor.block_number = None
    anchor.next_attempt_at = timezone.now()
    anchor.save(update_fields=["reason", "status", "tx_hash", "nonce", "block_number", "next_attempt_at",
                               "updated_at"])
    logger.warning("anchor of checkpoint %s: %s", anchor.tree_size, anchor.reason)
    return anchor


# --- the beat task --------------------------------------------------------------------------------------------


def anchoring_tick() -> dict:
    """One round: track what is sent and due, anchor the latest checkpoint if due, send what is pending and due.

    Tracking comes first so that an anchor that became final makes room for the next one, and one found dropped
    is sent again, in the same round. Returns counts by step, or {"status": "off", ...} when ANCHOR_RPC_URL is
    unset.
    """
    if not anchoring_enabled():
        logger.info(OFF_REASON)
        return {"status": "off", "detail": OFF_REASON}
    tracked = sent = 0
    for anchor in Anchor.objects.filter(status=Anchor.Status.SENT, next_attempt_at__lte=timezone.now()):
        anchor_track(anchor=anchor)
        tracked += 1
    created = anchor_latest_checkpoint()
    pending = Anchor.objects.filter(status=Anchor.Status.PENDING, next_attempt_at__lte=timezone.now())
    for anchor in pending.order_by("tree_size"):
        sent += anchor_send(anchor=anchor).status == Anchor.Status.SENT
    return {"status": "on", "created": created.tree_size if created else None, "sent": sent, "tracked": tracked}


# --- health and status ----------------------------------------------------------------------------------------


def anchoring_health() -> dict:
    """The /healthz entry: "off" (no ANCHOR_RPC_URL), "degraded" (an unfinished or failed anchor has a reason) or
    "ok". Reads the database only; never calls the chain."""
    if not anchoring_enabled():
        return {"status": "off", "detail": OFF_REASON}
    troubled = (Anchor.objects.filter(Q(status__in=UNFINISHED) & ~Q(reason="") | Q(status=Anchor.Status.FAILED))
                .order_by("-tree_size").first())
    if troubled is not None:
        return {"status": "degraded",
                "detail": f"anchor of checkpoint {troubled.tree_size} is {troubled.status}: {troubled.reason}",
                "faults": troubled.faults, "next_attempt_at": troubled.next_attempt_at.isoformat()}
    return {"status": "ok"}


def anchoring_status() -> dict:
    """What the anchors API says about anchoring itself: on or off, where, and from which address."""
    if not anchoring_enabled():
        return {"enabled": False, "detail": OFF_REASON}
    status = {"enabled": True, "confirmations": settings.ANCHOR_CONFIRMATIONS, "interval_s": settings.ANCHOR_INTERVAL_S}
    try:
        status["sender"] = anchor_account_load().address
    except AnchorConfigError as exc:
        status["detail"] = str(exc)
    return status
