from django.core.management.base import BaseCommand, CommandError

from config.common.roles import ROLES
from geo.accounts import ApiUserError, api_user_create
from geo.counties import CountyCodeError


class Command(BaseCommand):
    help = "Create an API user with one role and print its token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--county", help="6-digit GB/T 2260 county code; required for the bureau role")
        parser.add_argument("--password", help="for signing in to the web pages; random when omitted")

    def handle(self, *args, username, role, county, password, **options):
        try:
            _, token = api_user_create(username=username, role=role, county_code=county, password=password)
        except (ApiUserError, CountyCodeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(token)
