"""Verify the whole ledger: entry hashes, links and signatures, checkpoint roots and signatures, consistency."""

import os
import time

from django.core.management.base import BaseCommand

from ledger.log.models import Checkpoint, Entry
from ledger.log.verification import ledger_verify


class Command(BaseCommand):
    help = "Recompute and check every entry and checkpoint; exit 0 when all hold, 1 naming the first bad seq."

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                            help="processes checking entries (PostgreSQL only; default: CPU count)")

    def handle(self, *args, jobs: int, **options):
        started = time.perf_counter()
        failure = ledger_verify(jobs=jobs)
        elapsed_s = time.perf_counter() - started
        if failure is not None:
            self.stderr.write(f"ledger verification FAILED: {failure}")
            raise SystemExit(1)
        self.stdout.write(f"ledger OK: {Entry.objects.count()} entries, {Checkpoint.objects.count()} checkpoints "
                          f"verified in {elapsed_s:.1f} s")
