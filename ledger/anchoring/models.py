"""The on-chain anchor of a signed checkpoint (see `ledger.anchoring.chain` for the transaction format).

Written only by `ledger.anchoring.services`. One anchor per checkpoint, enforced by a unique constraint. Its life:

    pending ──sent──► sent ──ANCHOR_CONFIRMATIONS blocks──► final
       ▲                │
       └────────────────┘  dropped or reorganised out: sent again with a fresh nonce
    pending/sent + RPC fault: stays, `reason` says why, `next_attempt_at` backs off exponentially
    sent + receipt status 0: failed (terminal; `reason` says why)
"""

from django.db import models

from ledger.core.anchor_format import ANCHOR_FINAL, ANCHOR_SENT

__all__ = ["Anchor"]


class Anchor(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # not (yet) broadcast, or to be broadcast again
        SENT = ANCHOR_SENT  # broadcast; mined or not, not yet final
        FINAL = ANCHOR_FINAL  # mined, with at least ANCHOR_CONFIRMATIONS blocks (its own included)
        FAILED = "failed"  # mined with receipt status 0

    checkpoint = models.ForeignKey("ledger.Checkpoint", on_delete=models.PROTECT, related_name="anchors")
    tree_size = models.BigIntegerField()  # copied from the checkpoint: the size the transaction carries
    root_hash = models.BinaryField(max_length=32)  # copied from the checkpoint: the root the transaction carries
    chain_id = models.BigIntegerField(null=True, blank=True)  # EIP-155 chain id, once the chain has answered
    sender = models.CharField(max_length=42, blank=True, default="")  # checksummed "0x…" address of the key
    nonce = models.BigIntegerField(null=True, blank=True)  # of the current transaction
    tx_hash = models.CharField(max_length=66, blank=True, default="")  # "0x" + 64 hex digits; "" before signing
    block_number = models.BigIntegerField(null=True, blank=True)  # null until mined (again, after a reorg)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True, default="")  # the last error; "" when the last step went well
    attempts = models.PositiveIntegerField(default=0)  # broadcasts tried so far (the first send and every resend)
    faults = models.PositiveIntegerField(default=0)  # consecutive faulty steps; the backoff's exponent
    next_attempt_at = models.DateTimeField()  # do nothing before this (backoff after faults)
    sent_at = models.DateTimeField(null=True, blank=True)  # when the current transaction was broadcast
    final_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ledger_anchor"
        ordering = ["tree_size"]
        constraints = [
            models.UniqueConstraint(fields=["checkpoint"], name="ledger_anchor_one_per_checkpoint"),
            models.CheckConstraint(condition=models.Q(status__in=["pending", "sent", "final", "failed"]),
                                   name="ledger_anchor_status_known"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="ledger_anchor_due_idx")]

    def __str__(self):
        return f"anchor of checkpoint {self.tree_size} ({self.status})"

    @property
    def unfinished(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.SENT)
