"""Ledger benchmark on PostgreSQL: append rate (1 and 8 writers), proof latency and full verification at scale.

    .venv/bin/python bench/ledger.py [--server postgres://postgres@127.0.0.1:5432] [--entries 1000000]

Creates a scratch database `tanhui_bench` on the server (dropped at the end), migrates it, then:
1. appends through `entry_append` from 1 writer, then from 8 writer processes at once (each append its own
   transaction, as a request would make it); beside them, in the same run, the same payloads inserted into a
   plain table (no chain, signature or tree; one durable transaction each): what an ordinary audit-log table
   costs, so the ratio is the price of verifiability;
2. fills the ledger to --entries with a bulk loader (`bulk_fill`): the same entry bytes, chain, Ed25519
   signatures and stored tree nodes as `entry_append` makes, written with COPY instead of one transaction per
   entry, so that a million entries take minutes, not hours; then signs a checkpoint;
3. times inclusion and consistency proofs from the stored tree at that size (median and p95 of 1,000);
4. times `ledger_verify` (what `manage.py verify_ledger` runs) over every entry and checkpoint.
Prints one line per figure; docs/performance.md ("Ledger") records a run.
"""

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "tanhui_bench"


def _admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _setup_django(server: str, key_dir: str) -> None:
    os.environ["DATABASE_URL"] = f"{server}/{DATABASE}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["LEDGER_SIGNING_KEY_FILE"] = ""
    os.environ["TANHUI_VAR_DIR"] = key_dir
    os.environ["LEDGER_CHECKPOINT_INTERVAL_S"] = "3600"
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _payload(writer: int, n: int) -> dict:
    return {"asset": f"B-{writer}-{n % 50}", "writer": writer, "n": n, "holder": "510727-collective-0001",
            "amount": "1000000.00"}


def _append_many(count: int, writer: int) -> None:
    from django.db import connections

    from ledger.log.services import entry_append

    connections.close_all()
    for n in range(count):
        entry_append(kind="bench.append", payload=_payload(writer, n))
    connections.close_all()


PLAIN_TABLE = "CREATE TABLE bench_plain_log (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, " \
              "created timestamptz NOT NULL)"


def _plain_insert_many(count: int, writer: int) -> None:
    from django.db import connection, connections, transaction

    connections.close_all()
    for n in range(count):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_plain_log (kind, payload, created) VALUES (%s, %s, now())",
                           ["bench.append", json.dumps(_payload(writer, n))])
    connections.close_all()


def bench_appends(writers: int, per_writer: int, target=_append_many) -> float:
    """Appends per second with `writers` processes each making `per_writer` appends (through `target`)."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=(per_writer, w)) for w in range(writers)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return writers * per_writer / elapsed


def bulk_fill(target_size: int) -> None:
    """Extend the ledger to `target_size` entries with COPY, producing exactly what entry_append would."""
    from django.db import connection, transaction

    from ledger.core import codec, merkle
    from ledger.log.keys import signing_key_load, verifier_key_publish
    from ledger.models import LogHead, TreeNode

    signer = signing_key_load()
    key_id = signer.key_id.hex()
    with transaction.atomic():
        verifier_key_publish(signer)
        head = LogHead.objects.select_for_update().get(pk=1)
        seq, previous = head.tree_size, bytes(head.last_hash)
        frontier = [bytes(head.frontier)[i:i + 32] for i in range(0, len(bytes(head.frontier)), 32)]
        moment = datetime.now(UTC)
        raw = connection.cursor().cursor
        while seq < target_size:  # one COPY at a time per connection: entries, then their nodes, per batch
            entry_rows, node_rows = [], []
            batch_end = min(seq + 50_000, target_size)
            for position in range(seq, batch_end):
                payload = {"asset": f"B-{position % 5000}", "n": position, "holder": "510727-collective-0001",
                           "amount": "1000000.00"}
                moment += timedelta(microseconds=1)
                body = codec.entry_bytes(seq=position, kind="bench.bulk", payload=payload,
                                         timestamp=codec.format_timestamp(moment), prev_hash=previous)
                leaf = merkle.leaf_hash(body)
                entry_rows.append((position, "bench.bulk", json.dumps(payload), moment, previous, leaf,
                                   signer.sign(leaf), key_id))
                node_rows.append((TreeNode.key(0, position), leaf))
                node, level, index = leaf, 0, position
                while index & 1:
                    node = merkle.node_hash(frontier.pop(), node)
                    level, index = level + 1, index >> 1
                    node_rows.append((TreeNode.key(level, index), node))
                frontier.append(node)
                previous = leaf
            seq = batch_end
            with raw.copy("COPY ledger_entry (seq, kind, payload, timestamp, prev_hash, hash, signature, key_id) "
                          "FROM STDIN") as copy:
                for row in entry_rows:
                    copy.write_row(row)
            with raw.copy("COPY ledger_treenode (node_key, hash) FROM STDIN") as copy:
                for row in node_rows:
                    copy.write_row(row)
        head.tree_size, head.last_hash, head.frontier = seq, previous, b"".join(frontier)
        head.save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_entry")
        cursor.execute("ANALYZE ledger_treenode")


def _percentiles_ms(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"median {statistics.median(samples) * 1000:.2f} ms, p95 {samples[int(len(samples) * 0.95)] * 1000:.2f} "
            f"ms, max {samples[-1] * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single-appends", type=int, default=2000)
    parser.add_argument("--per-writer", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each append case")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="verify_ledger processes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    _admin(args.server, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(args.server, f"CREATE DATABASE {DATABASE}")
    try:
        with tempfile.TemporaryDirectory(prefix="tanhui-bench-") as key_dir:
            _setup_django(args.server, key_dir)
            from ledger.core import merkle
            from ledger.log.services import checkpoint_sign_latest
            from ledger.log.tree import tree_consistency_proof, tree_inclusion_proof, tree_root
            from ledger.log.verification import ledger_verify

            print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}")
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(PLAIN_TABLE)
            for writers, per_writer in ((1, args.single_appends), (8, args.per_writer)):
                ours, plain = [], []
                for _ in range(args.repeats):  # interleaved, so that both see the same machine
                    ours.append(bench_appends(writers, per_writer))
                    plain.append(bench_appends(writers, per_writer, _plain_insert_many))
                print(f"appends, {writers} writer(s), {writers * per_writer} appends per run: entry_append "
                      f"{' '.join(f'{r:.0f}' for r in ours)}/s, median {statistics.median(ours):.0f}/s; plain "
                      f"INSERT {' '.join(f'{r:.0f}' for r in plain)}/s, median {statistics.median(plain):.0f}/s; "
                      f"ratio {statistics.median(ours) / statistics.median(plain):.2f}")

            started = time.perf_counter()
            bulk_fill(args.entries)
            checkpoint = checkpoint_sign_latest(force=True)
            print(f"bulk fill to {args.entries} entries + checkpoint: {time.perf_counter() - started:.0f} s")
            size = checkpoint.tree_size
            root_hash = bytes(checkpoint.root_hash)

            rng = random.Random(5)
            inclusion, consistency = [], []
            from ledger.models import Entry

            for _ in range(1000):
                seq = rng.randrange(size)
                started = time.perf_counter()
                proof = tree_inclusion_proof(seq=seq, tree_size=size)
                inclusion.append(time.perf_counter() - started)
                leaf = bytes(Entry.objects.filter(seq=seq).values_list("hash", flat=True).get())
                assert merkle.verify_inclusion(seq, size, leaf, proof, root_hash)
            for _ in range(1000):
                old = rng.randrange(1, size)
                started = time.perf_counter()
                tree_consistency_proof(old_size=old, new_size=size)
                consistency.append(time.perf_counter() - started)
            print(f"inclusion proof at {size} entries: {_percentiles_ms(inclusion)} ({len(proof)} hashes)")
            print(f"consistency proof to {size} entries: {_percentiles_ms(consistency)}")
            started = time.perf_counter()
            assert tree_root(tree_size=size) == root_hash
            print(f"root from stored tree at {size}: {(time.perf_counter() - started) * 1000:.2f} ms")

            for _ in range(2):
                started = time.perf_counter()
                failure = ledger_verify(jobs=args.jobs)
                print(f"verify {size} entries (jobs={args.jobs}): {time.perf_counter() - started:.1f} s, "
                      f"result {failure or 'OK'}")
            from django.db import connections

            connections.close_all()
    finally:
        if not args.keep:
            _admin(args.server, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
