"""API tokens: create_api_user shows an existing user's token; the token page shows and rotates one's own token."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from geo.accounts import api_user_create

pytestmark = pytest.mark.django_db
PAGE = "/accounts/token/"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def whoami(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/whoami/")


def shown_token(html: str) -> str:
    found = re.findall(r'<code id="api-token">([0-9a-f]{40})</code>', html)
    assert len(found) == 1, html
    return found[0]


# --- manage.py create_api_user on an existing user -------------------------------------------------------------------


def test_create_api_user_again_prints_the_same_token(capsys):
    call_command("create_api_user", "mianyang-bank", "--role", "bank")
    first = capsys.readouterr().out.strip()
    call_command("create_api_user", "mianyang-bank", "--role", "bank")
    again = capsys.readouterr()
    assert again.out.strip() == first
    assert "user 'mianyang-bank' already exists with role bank; its API token:" in again.err
    assert whoami(first).json()["username"] == "mianyang-bank"
    assert get_user_model().objects.filter(username="mianyang-bank").count() == 1


def test_create_api_user_issues_a_token_to_a_user_without_one(capsys):
    user = get_user_model().objects.create_user(username="auditor-nt", password="x" * 20)
    user.groups.add(Group.objects.get_or_create(name="auditor")[0])
    assert not Token.objects.filter(user=user).exists()
    call_command("create_api_user", "auditor-nt", "--role", "auditor")
    token = capsys.readouterr().out.strip()
    assert Token.objects.get(user=user).key == token
    assert whoami(token).json() == {"username": "auditor-nt", "roles": ["auditor"], "county": None}


def test_create_api_user_again_for_a_bureau_needs_no_county_but_checks_one_given(capsys):
    call_command("create_api_user", "pingwu", "--role", "bureau", "--county", "510727")
    token = capsys.readouterr().out.strip()
    call_command("create_api_user", "pingwu", "--role", "bureau")
    assert capsys.readouterr().out.strip() == token
    with pytest.raises(CommandError, match=r"user 'pingwu' already exists in county 510727, not 510703; nothing "):
        call_command("create_api_user", "pingwu", "--role", "bureau", "--county", "510703")


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "bank"], "user 'someone' already exists with role auditor, not bank; nothing changed"),
    (["--role", "auditor", "--password", "a new password 123"],
     "user 'someone' already exists; --password sets the password of a new user only"),
])
def test_create_api_user_never_changes_an_existing_user(capsys, args, message):
    user, token = api_user_create(username="someone", role="auditor", password="the first password 1")
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("create_api_user", "someone", *args)
    user.refresh_from_db()
    assert sorted(user.groups.values_list("name", flat=True)) == ["auditor"]
    assert user.check_password("the first password 1")
    assert Token.objects.get(user=user).key == token
    assert capsys.readouterr().out == ""  # no token printed for a refused request


# --- the token page ------------------------------------------------------------------------------------------------


@pytest.fixture
def bank():
    user, token = api_user_create(username="demo-bank", role="bank", password="correct horse battery staple 9")
    return user, token


def test_page_shows_the_users_own_token_and_is_not_cached(client, bank):
    user, token = bank
    api_user_create(username="other", role="exchange")
    client.force_login(user)
    response = client.get(PAGE, **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert shown_token(html) == token
    assert "no-store" in response["Cache-Control"]
    assert f'href="{PAGE}"' in html  # the header links to it


def test_page_needs_sign_in(client, bank):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PAGE}"
    assert client.post(PAGE)["Location"] == f"/accounts/login/?next={PAGE}"
    assert Token.objects.get(user=bank[0]).key == bank[1]


def test_rotating_replaces_the_token_on_the_page_and_in_the_api(bank):
    user, old = bank
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(PAGE, **EN)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert whoami(old).status_code == 200

    response = client.post(PAGE, {"csrfmiddlewaretoken": csrf}, **EN)
    assert response.status_code == 302
    assert response["Location"] == PAGE
    after = client.get(PAGE, **EN).content.decode()
    new = shown_token(after)
    assert new != old
    assert "A new API token is issued; any token you had before no longer works." in after
    assert Token.objects.get(user=user).key == new

    assert whoami(new).json()["username"] == "demo-bank"
    refused = whoami(old)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Invalid token."


def test_rotating_without_the_csrf_token_is_refused(bank):
    user, old = bank
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(PAGE, {}, **EN)
    assert response.status_code == 403
    assert Token.objects.get(user=user).key == old
    assert whoami(old).status_code == 200


def test_a_get_never_issues_a_token(client):
    user = get_user_model().objects.create_user(username="tokenless", password="x" * 20)
    client.force_login(user)
    html = client.get(PAGE, **EN).content.decode()
    assert "You have no API token yet." in html
    assert "Issue a token" in html
    assert not Token.objects.filter(user=user).exists()
    client.post(PAGE)
    issued = Token.objects.get(user=user).key
    assert shown_token(client.get(PAGE).content.decode()) == issued
    assert whoami(issued).json()["username"] == "tokenless"


CHINESE = [  # (English on the page, its Chinese translation)
    ("API token", "API 令牌"),
    ("Your token", "您的令牌"),
    ("Issued (UTC)", "签发时间（UTC）"),
    ("Replace with a new token", "更换为新令牌"),
    ("It acts as you, with your roles: keep it secret.", "它以您的身份和角色行事，请妥善保密。"),
]


def test_page_in_chinese_by_accept_language(client, bank):
    client.force_login(bank[0])
    english = client.get(PAGE, **EN).content.decode()
    chinese = client.get(PAGE, **ZH).content.decode()
    for en, zh in CHINESE:
        assert en in english
        assert zh in chinese
        assert zh not in english
    assert "Replace with a new token" not in chinese


def test_page_in_chinese_by_the_language_cookie_and_after_rotating(client, bank):
    client.force_login(bank[0])
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": PAGE})
    response = client.post(PAGE, follow=True, **EN)  # the cookie outweighs the browser's language
    html = response.content.decode()
    assert "签发令牌" not in html and "更换为新令牌" in html
    assert "已签发新的 API 令牌；您之前的令牌已失效。" in html
    assert "您还没有 API 令牌。" not in html


def test_no_token_page_in_chinese(client):
    user = get_user_model().objects.create_user(username="tokenless", password="x" * 20)
    client.force_login(user)
    html = client.get(PAGE, **ZH).content.decode()
    assert "您还没有 API 令牌。" in html
    assert "签发令牌" in html
