"""Load the demo county (ledger.demo) once and print who can sign in."""

from django.core.management.base import BaseCommand

from ledger.demo import COUNTY, demo_load


class Command(BaseCommand):
    help = "Load a generated demo county (510727, Pingwu-like) through the services, once; print the demo users."

    def handle(self, *args, **options):
        report = demo_load(log=lambda line: self.stdout.write(f"  {line}"))
        if report.already_loaded:
            self.stdout.write(f"demo county {COUNTY} is already loaded; nothing to do")
        else:
            self.stdout.write(f"demo county {COUNTY} loaded in {report.seconds:.1f} s")
        self.stdout.write("demo users (sign in at /accounts/login/):")
        for username, (role, password) in report.users.items():
            self.stdout.write(f"  {username:<14} role {role:<9} password: {password}")
