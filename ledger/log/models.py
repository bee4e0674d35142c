"""The ledger's tables: entries, the stored Merkle tree, the log head, checkpoints and verifier keys.

Entries, tree nodes and checkpoints are append-only: the model and its QuerySet refuse to change or delete them,
and on PostgreSQL a trigger (migration 0002) refuses UPDATE, DELETE and TRUNCATE. Writes go through
`ledger.log.services`; nothing else should create these rows.
"""

from django.db import models
from django.db.models.fields.json import KT
from django.db.models.lookups import Exact

from ledger.core.errors import ImmutableEntryError, gettext_noop

__all__ = ["AppendOnlyModel", "AppendOnlyQuerySet", "Checkpoint", "Entry", "EntryQuerySet", "LogHead", "TreeNode",
           "VerifierKey"]


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableEntryError(gettext_noop("%(table)s is append-only: update() refused"),
                                  table=self.model._meta.db_table)

    def delete(self):
        raise ImmutableEntryError(gettext_noop("%(table)s is append-only: delete() refused"),
                                  table=self.model._meta.db_table)

    # bulk_update goes through update(); _raw_delete is Django's private escape hatch and stays unused.


class AppendOnlyModel(models.Model):
    """A row that may be inserted once and never changed or deleted."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableEntryError(gettext_noop("%(table)s row %(row)s is append-only: save over it refused"),
                                      table=self._meta.db_table, row=self.pk)
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableEntryError(gettext_noop("%(table)s row %(row)s is append-only: delete refused"),
                                  table=self._meta.db_table, row=self.pk)


class EntryQuerySet(AppendOnlyQuerySet):
    def for_asset(self, asset_code: str) -> "EntryQuerySet":
        """Entries whose payload names `asset_code` under the key "asset", in log order (indexed).

        Compared as text (`payload ->> 'asset'`), the expression `ledger_entry_asset_idx` indexes: the JSON
        comparison `payload__asset=` would be `payload -> 'asset' = '"..."'::jsonb`, which no index serves."""
        return self.filter(Exact(KT("payload__asset"), asset_code)).order_by("seq")

    def in_range(self, first_seq: int, last_seq: int) -> "EntryQuerySet":
        """Entries with first_seq <= seq <= last_seq, in log order."""
        return self.filter(seq__gte=first_seq, seq__lte=last_seq).order_by("seq")


class Entry(AppendOnlyModel):
    """One record of the ledger. See `ledger.core.codec` for its bytes; `hash` is their RFC 6962 leaf hash."""

    seq = models.BigIntegerField(primary_key=True)  # 0, 1, 2, ... with no gap: the Merkle leaf index
    kind = models.CharField(max_length=64)  # e.g. "asset.register"
    payload = models.JSONField()
    timestamp = models.DateTimeField()  # microsecond precision, UTC
    prev_hash = models.BinaryField(max_length=32)  # hash of entry seq - 1; 32 zero bytes for seq 0
    hash = models.BinaryField(max_length=32)  # SHA-256(0x00 || entry bytes)
    signature = models.BinaryField(max_length=64)  # Ed25519 over `hash`
    key_id = models.CharField(max_length=8)  # hex key ID of the signing key (see VerifierKey)

    objects = EntryQuerySet.as_manager()

    class Meta:
        db_table = "ledger_entry"
        ordering = ["seq"]
        indexes = [models.Index(KT("payload__asset"), "seq", name="ledger_entry_asset_idx")]
        verbose_name_plural = "entries"

    def __str__(self):
        return f"entry {self.seq} {self.kind}"


class TreeNode(AppendOnlyModel):
    """The hash of one perfect subtree of the Merkle tree: leaves [index * 2**level, (index + 1) * 2**level).

    Written when the subtree completes, at append time; level 0 holds the leaf hashes. Keyed by
    `node_key = index * 64 + level` so that a proof's nodes come back in one indexed `IN` query.
    """

    node_key = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField(max_length=32)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        db_table = "ledger_treenode"

    def __str__(self):
        return f"tree node level={self.level} index={self.index}"

    @staticmethod
    def key(level: int, index: int) -> int:
        return index * 64 + level

    @property
    def level(self) -> int:
        return self.node_key % 64

    @property
    def index(self) -> int:
        return self.node_key // 64


class LogHead(models.Model):
    """The single row (pk=1) that appends lock. Holds the tree size, the last hash and the right-edge frontier.

    `frontier` concatenates the 32-byte roots of the perfect subtrees on the tree's right edge, largest first:
    one per set bit of `tree_size`. Folding them from the right gives the current root.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    tree_size = models.BigIntegerField(default=0)
    last_hash = models.BinaryField(max_length=32, default=bytes(32))
    frontier = models.BinaryField(default=b"")

    class Meta:
        db_table = "ledger_loghead"

    def __str__(self):
        return f"log head at size {self.tree_size}"


class Checkpoint(AppendOnlyModel):
    """A signed C2SP tlog checkpoint of the first `tree_size` entries."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=32)
    note_text = models.TextField()  # the whole signed note, as served
    key_id = models.CharField(max_length=8)
    created_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        db_table = "ledger_checkpoint"
        ordering = ["tree_size"]

    def __str__(self):
        return f"checkpoint {self.tree_size}"


class VerifierKey(models.Model):
    """A published verifier key of the registry, current or retired. Retired keys stay published forever."""

    name = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8)  # hex
    vkey = models.CharField(max_length=300, unique=True)  # name+keyid+base64(0x01 || public key)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ledger_verifierkey"
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.vkey
