"""Restore a backup file that export_ledger wrote into an empty database, verified before it commits."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ledger.management.commands._backup import BackupError, ledger_import


class Command(BaseCommand):
    help = ("Rebuild an empty database from a backup FILE (or - for stdin): the ledger, the rows it points to and "
            "the registry's tables, replayed; every line is checked and verify_ledger's checks run before the "
            "one transaction commits. Refuses, naming the first bad line, and changes nothing otherwise.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the backup file to read, or - for stdin")

    def handle(self, *args, file: str, **options):
        try:
            if file == "-":
                report = ledger_import(sys.stdin.buffer)
            else:
                path = Path(file)
                try:
                    handle = path.open("rb")
                except OSError as error:
                    raise CommandError(f"cannot read {path}: {error.strerror}") from None
                with handle:
                    report = ledger_import(handle)
        except BackupError as error:
            raise CommandError(f"import refused, nothing was changed: {error}") from None
        rows = ", ".join(f"{count} {label}" for label, count in report.rows.items())
        tables = ", ".join(f"{count} {table}" for table, count in report.registry.items())
        self.stdout.write(f"imported and verified {report.tree_size} entries, {report.checkpoints} checkpoints, "
                          f"rows ({rows}); registry tables rebuilt by replay ({tables}) in {report.seconds:.1f} s")
        for party, username in sorted(report.unlinked_users.items()):
            self.stdout.write(f"  party {party} acted through user {username!r}, who does not exist here: left "
                              "unlinked (users made before the import, e.g. with create_api_user, are linked)")
        if report.current_key:
            self.stdout.write(f"  the ledger's current key is {report.current_key}: sign with its private key "
                              "(LEDGER_SIGNING_KEY or LEDGER_SIGNING_KEY_FILE), or new entries publish another")
