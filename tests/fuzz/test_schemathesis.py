"""Schemathesis over every API operation, as each role and anonymously: generated requests (valid and not) must
never get a 5xx, and every answer must fit the OpenAPI schema (status documented, body, content type).

Bounded: SCHEMATHESIS_MAX_EXAMPLES examples per operation and role (default 10; .ci/run sets its own). The
requests go to the Django app in process (WSGI), on the test database; no network.
"""

import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from config.common.roles import ROLES

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=False)]
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

schema = schemathesis.openapi.from_dict(SchemaGenerator(urlconf="config.urls").get_schema(request=None, public=True))
schema.app = get_wsgi_application()


@pytest.fixture
def tokens(db):
    """One API token per role, plus None: anonymous."""
    from geo.accounts import api_user_create

    found = {role: api_user_create(username=f"fuzz-{role}", role=role,
                                   county_code="510727" if role == "bureau" else None)[1] for role in ROLES}
    found["anonymous"] = None
    return found


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, print_blob=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_as_every_role(case, tokens):
    for key in tokens.values():
        headers = {"Authorization": f"Token {key}"} if key else {}
        case.call_and_validate(headers=headers, checks=CHECKS)
