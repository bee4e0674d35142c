from django.core.management.base import BaseCommand, CommandError

from config.common.roles import ROLES
from geo.accounts import ApiUserError, api_user_ensure
from geo.counties import CountyCodeError


class Command(BaseCommand):
    help = ("Create an API user with one role and print its token. For a user that already exists with that role, "
            "print its token (issuing one if it has none) and change nothing.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--county", help="6-digit GB/T 2260 county code; required for a new bureau user")
        parser.add_argument("--password", help="for signing in to the web pages (a new user only); random when "
                                               "omitted")

    def handle(self, *args, username, role, county, password, **options):
        try:
            _, token, created = api_user_ensure(username=username, role=role, county_code=county, password=password)
        except (ApiUserError, CountyCodeError) as exc:
            raise CommandError(str(exc)) from None
        if not created:
            self.stderr.write(f"user {username!r} already exists with role {role}; its API token:",
                              style_func=self.style.WARNING)
        self.stdout.write(token)
