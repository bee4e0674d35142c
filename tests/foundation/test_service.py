"""The foundation: health, schema, docs, problem+json errors, tokens and roles."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from config.common.roles import role_required


class BankOnlyView(APIView):
    permission_classes = [role_required("bank")]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("bank-only/", BankOnlyView.as_view())]


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    body = json.loads(response.content)
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == response.status_code
    return body


@pytest.mark.django_db
def test_healthz_reports_database_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_names_the_failing_part(client, monkeypatch):
    from config import health

    monkeypatch.setitem(health.CHECKS, "database", lambda: "OperationalError: connection refused")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = problem(response)
    assert body["detail"] == "unhealthy: database"
    assert body["checks"]["database"] == {"status": "down", "detail": "OperationalError: connection refused"}


@pytest.mark.django_db
def test_healthz_reports_unreachable_broker(client, settings):
    # Nothing listens on port 1 of loopback: the broker check must say so, not hang.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = problem(response)
    assert body["detail"] == "unhealthy: broker"
    assert body["checks"]["broker"]["status"] == "down"


@pytest.mark.django_db
def test_openapi_schema_is_openapi_3(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/whoami/" in schema["paths"]


@pytest.mark.django_db
def test_docs_page_uses_local_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html  # no CDN: the machines that run Tanhui may have no internet


@pytest.mark.django_db
def test_unknown_route_is_problem_404(client):
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404
    body = problem(response)
    assert body["instance"] == "/api/no-such-thing/"


@pytest.mark.django_db
def test_missing_token_is_401_problem():
    response = APIClient().get("/api/whoami/")
    assert response.status_code == 401
    body = problem(response)
    assert body["title"] == "Not authenticated"
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_wrong_token_is_401_problem():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = client.get("/api/whoami/")
    assert response.status_code == 401
    assert problem(response)["detail"] == "Invalid token."


@pytest.mark.django_db
@pytest.mark.urls("tests.foundation.test_service")
def test_wrong_role_is_403_problem(api_user):
    _, exchange = api_user("exchange")
    response = exchange.get("/bank-only/")
    assert response.status_code == 403
    assert problem(response)["detail"] == "this action needs the role bank"
    _, bank = api_user("bank")
    assert bank.get("/bank-only/").json() == {"ok": True}


@pytest.mark.django_db
def test_whoami_shows_role_and_county(api_user):
    _, bureau = api_user("bureau", county="510727", username="pingwu")
    assert bureau.get("/api/whoami/").json() == {"username": "pingwu", "roles": ["bureau"], "county": "510727"}


@pytest.mark.django_db
def test_create_api_user_prints_a_working_token(capsys):
    call_command("create_api_user", "icbc-mianyang", "--role", "bank")
    token = capsys.readouterr().out.strip()
    assert len(token) == 40
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/whoami/").json()["roles"] == ["bank"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "bureau"], "a bureau user needs --county"),
        (["--role", "bureau", "--county", "5107"], "county code must be 6 digits (GB/T 2260), got '5107'"),
        (["--role", "bureau", "--county", "990727"], "county code 990727 has unknown province prefix 99"),
        (["--role", "bureau", "--county", "510700"], "510700 is a province or prefecture code"),
    ],
)
def test_create_api_user_refuses_bad_input(args, message):
    from django.contrib.auth import get_user_model

    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_api_user", "someone", *args)
    assert not get_user_model().objects.filter(username="someone").exists()


@pytest.mark.django_db
def test_create_api_user_refuses_duplicate_name():
    call_command("create_api_user", "dup", "--role", "auditor")
    with pytest.raises(CommandError, match="user 'dup' already exists"):
        call_command("create_api_user", "dup", "--role", "bank")


@pytest.mark.django_db
def test_validation_errors_list_fields():
    from rest_framework import serializers

    from config.problems import problem_exception_handler

    class Input(serializers.Serializer):
        epoch = serializers.IntegerField(min_value=1970)
        legend = serializers.CharField()

    s = Input(data={"epoch": 1800})
    assert not s.is_valid()
    response = problem_exception_handler(serializers.ValidationError(s.errors), {})
    assert response.status_code == 400
    errors = {e["pointer"]: e["detail"] for e in response.data["errors"]}
    assert errors == {
        "#/epoch": "Ensure this value is greater than or equal to 1970.",
        "#/legend": "This field is required.",
    }
