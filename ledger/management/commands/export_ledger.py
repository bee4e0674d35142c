"""Write the whole ledger to a backup file: newline-delimited JSON (docs/ledger.md, "Backups")."""

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ledger.core.errors import LedgerError
from ledger.management.commands._backup import ledger_export


class Command(BaseCommand):
    help = ("Write the ledger (entries, checkpoints, verifier keys) and the parcels and accounting results it "
            "points to as newline-delimited JSON to FILE, atomically, or to stdout with '-'.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the backup file to write (replaced atomically), or - for stdout")

    def handle(self, *args, file: str, **options):
        if file == "-":
            try:
                report = ledger_export(self.stdout)  # each line ends in "\n", so the wrapper adds nothing
            except LedgerError as error:
                raise CommandError(f"export failed: {error}") from None
            self.stderr.write(self._summary(report, "stdout"))
            return
        path = Path(file)
        if path.is_dir():
            raise CommandError(f"{path} is a directory; give a file name")
        if not path.parent.is_dir():
            raise CommandError(f"directory {path.parent} does not exist")
        try:
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as error:
            raise CommandError(f"cannot write in {path.parent}: {error.strerror}") from None
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
                report = ledger_export(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except LedgerError as error:
            Path(temporary).unlink(missing_ok=True)
            raise CommandError(f"export failed, {path} is unchanged: {error}") from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        self.stdout.write(self._summary(report, str(path)) + f", {path.stat().st_size} bytes")

    @staticmethod
    def _summary(report, where: str) -> str:
        rows = ", ".join(f"{count} {label}" for label, count in report.rows.items())
        return (f"exported {report.tree_size} entries, {report.checkpoints} checkpoints and rows ({rows}) to "
                f"{where} in {report.seconds:.1f} s")
