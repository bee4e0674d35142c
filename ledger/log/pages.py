"""The public ledger page: the latest signed checkpoint, its anchor on chain and the published keys."""

from django.shortcuts import render

from ledger.core.anchor_format import ANCHOR_FINAL
from ledger.log.models import Checkpoint, Entry, VerifierKey


def ledger_page(request):
    """The latest signed checkpoint, its anchor on chain (when anchoring is on), and the published keys."""
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    anchor = checkpoint.anchors.order_by("-id").first() if checkpoint is not None else None
    last_final = None
    if anchor is None or anchor.status != ANCHOR_FINAL:
        last_final = Checkpoint.objects.filter(anchors__status=ANCHOR_FINAL).order_by("-tree_size").first()
    return render(request, "ledger/ledger.html", {
        "checkpoint": checkpoint, "anchor": anchor, "root_hex": bytes(checkpoint.root_hash).hex() if checkpoint
        else "", "last_final": last_final, "last_final_anchor": last_final.anchors.filter(
            status=ANCHOR_FINAL).first() if last_final else None,
        "entry_count": Entry.objects.count(), "keys": VerifierKey.objects.order_by("-created_at"),
    })
