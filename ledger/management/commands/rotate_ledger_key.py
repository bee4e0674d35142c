"""Rotate the registry's signing key: new entries and checkpoints name the new key; old keys stay published."""

from django.core.management.base import BaseCommand, CommandError

from ledger.core.errors import SigningKeyError
from ledger.log.keys import signing_key_rotate


class Command(BaseCommand):
    help = "Generate a new ledger signing key in the key file, retire the old one (it stays published)."

    def handle(self, *args, **options):
        try:
            signer = signing_key_rotate()
        except SigningKeyError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"new verifier key: {signer.verifier.vkey}")
