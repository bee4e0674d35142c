import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from config.common.roles import BUREAU
from geo.accounts import api_user_create

DEMO_COUNTY = "510727"  # Pingwu County, Sichuan: the demo county


class Command(BaseCommand):
    help = "Create the local admin (superuser, bureau of the demo county) once; print its token and password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        password_file = settings.VAR_DIR / "admin-password"
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user, _ = api_user_create(username=username, role=BUREAU, county_code=DEMO_COUNTY, password=password,
                                      superuser=True)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password)
        token, _ = Token.objects.get_or_create(user=user)
        if password_file.exists():
            password = password_file.read_text().strip()
        else:
            password = "(not stored here; set one with manage.py changepassword)"
        self.stdout.write(f"admin user: {username}  password: {password}")
        self.stdout.write(f"admin token: {token.key}")
