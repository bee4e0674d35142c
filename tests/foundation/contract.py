"""Check a response against the OpenAPI schema the API publishes: the test suite's side of the API contract.

`tests/conftest.py` runs every response to a path under /api/ through `ResponseContract.check`, so a view that
answers with a status, a media type or a body its schema does not document fails the test that caused it.

What is checked, for one response to METHOD PATH:

- PATH matches a path template of the schema, and METHOD is one of its operations; an unknown path must be a 404
  problem, an unknown method a 405 problem.
- The status code is documented for that operation.
- The Content-Type's media type is one documented for that status (a body-less response documents none).
- A JSON body (application/json, application/*+json) validates against the documented schema, with two
  tightenings that make drift visible: an object schema that lists `properties` admits no other member unless it
  says `additionalProperties`, and `format` is checked (date-time, date, uri, byte, uuid, int64, double).
- Every 4xx and 5xx answer is application/problem+json and validates against the problem schema it documents
  (the Problem schema for a path or method the schema does not have).
- A 2xx answer to a JSON request: the request body validates against the operation's request schema, so what
  the docs say a call takes admits what the API accepts.

OpenAPI 3.0 schemas are JSON Schema draft 4 plus `nullable`; `to_json_schema` turns `nullable: true` into an
`anyOf` with null and leaves the OpenAPI-only keywords (readOnly, example, discriminator) for the validator to
ignore.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_COMPONENT = "Problem"
SCHEMA_URI = "urn:tanhui:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ResponseContractError(AssertionError):
    """A response that its operation's schema does not allow; the message names the operation and every fault."""


# --- formats ------------------------------------------------------------------------------------------------------

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("date", raises=ValueError)
def _date(value) -> bool:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            raise ValueError(f"{value!r} is not an RFC 3339 full-date")
        dt.date.fromisoformat(value)
    return True


@FORMATS.checks("uri")
def _uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


@FORMATS.checks("byte", raises=(binascii.Error, ValueError))
def _byte(value) -> bool:
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


@FORMATS.checks("int64")
def _int64(value) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


@FORMATS.checks("double")
def _double(value) -> bool:
    return not isinstance(value, float) or value == value  # NaN is no JSON number


# --- OpenAPI 3.0 schema -> JSON Schema -------------------------------------------------------------------------


def to_json_schema(node, *, closed: bool = True):
    """A deep copy of an OpenAPI 3.0 schema as JSON Schema draft 4: `nullable` becomes anyOf-null, `$ref`s point
    into SCHEMA_URI, and (when `closed`) an object that lists properties admits no others unless it says so."""
    if isinstance(node, list):
        return [to_json_schema(item, closed=closed) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
            out[key] = SCHEMA_URI + value
        elif key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: to_json_schema(sub, closed=closed) for name, sub in value.items()}
        elif key in ("example", "examples", "default", "enum"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = to_json_schema(value, closed=closed)
    if closed and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


# --- the contract ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: dict

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template} ({self.spec.get('operationId', '?')})"


def _template_regex(template: str) -> re.Pattern:
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                      for part in re.split(r"(\{[^}]+\})", template))
    return re.compile(f"^{pattern}$")


def media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def is_json(media: str | None) -> bool:
    return media is not None and (media == "application/json" or media.endswith("+json"))


class ResponseContract:
    """The responses an OpenAPI document allows. `check(method, path, status, content_type, body)` raises
    ResponseContractError listing what is wrong, or returns the operation checked (None for unknown paths)."""

    def __init__(self, document: dict):
        self.document = json.loads(json.dumps(document))  # plain dicts and strings, as a client reads it
        converted = to_json_schema(self.document)
        # A problem type may add named members (`asset_code`, `overlap_ha`): the Problem schema stays open.
        problem = converted["components"]["schemas"][PROBLEM_COMPONENT]
        problem.pop("additionalProperties", None)
        self.registry = Registry().with_resource(SCHEMA_URI, Resource(contents=converted, specification=DRAFT4))
        self.request_registry = Registry().with_resource(SCHEMA_URI, Resource(
            contents=to_json_schema(self.document, closed=False), specification=DRAFT4))
        # Literal paths first, then by fewest parameters: /api/methods/kinds/ before /api/methods/{method_id}/.
        templates = sorted(self.document["paths"], key=lambda t: (t.count("{"), -len(t), t))
        self.paths = [(_template_regex(t), t) for t in templates]
        self.checked: list[tuple[str, str]] = []

    def operation(self, method: str, path: str) -> Operation | str | None:
        """The operation for METHOD PATH; None when no path matches; "method" when the path has no such method."""
        for regex, template in self.paths:
            if regex.match(path):
                spec = self.document["paths"][template].get(method.lower())
                if spec is None and method.lower() == "head":
                    spec = self.document["paths"][template].get("get")
                return Operation(method.lower(), template, spec) if spec is not None else "method"
        return None

    def validator(self, schema: dict) -> Draft4Validator:
        return Draft4Validator(to_json_schema(schema), registry=self.registry, format_checker=FORMATS)

    def body_errors(self, schema: dict, body) -> list[str]:
        errors = [leaf for error in self.validator(schema).iter_errors(body) for leaf in _leaves(error)]
        errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
        return [f"#/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors]

    def problem_errors(self, content_type: str | None, body) -> list[str]:
        faults = []
        if media_type(content_type) != PROBLEM_MEDIA_TYPE:
            faults.append(f"an error answer must be {PROBLEM_MEDIA_TYPE}, got {content_type!r}")
        faults += self.body_errors({"$ref": f"#/components/schemas/{PROBLEM_COMPONENT}"}, body)
        return faults

    def check(self, *, method: str, path: str, status: int, content_type: str | None, body: bytes,
              request_content_type: str | None = None, request_body: bytes = b"") -> Operation | None:
        __tracebackhide__ = True
        operation = self.operation(method, path)
        faults: list[str] = []
        decoded, decode_fault = _decode(content_type, body)
        if operation is None or operation == "method":
            want = 404 if operation is None else 405
            where = "no path of the schema matches" if operation is None else "the schema has no such operation"
            if status != want:
                faults.append(f"{where}, so the answer must be {want}, got {status}")
            faults += [decode_fault] if decode_fault else self.problem_errors(content_type, decoded)
            if faults:
                raise ResponseContractError(f"{method.upper()} {path}: " + "; ".join(faults))
            return None

        self.checked.append((operation.method, operation.template))
        responses = operation.spec.get("responses", {})
        documented = responses.get(str(status)) or responses.get("default")
        if documented is None:
            raise ResponseContractError(f"{operation.name}: status {status} is not documented "
                                        f"(documented: {', '.join(sorted(responses))})")
        content = documented.get("content") or {}
        media = media_type(content_type)
        error = status >= 400
        if error:  # whatever the operation documents, an error is a problem
            faults += [decode_fault] if decode_fault else self.problem_errors(content_type, decoded)
        if not body and method.lower() != "head" and content and status != 204:
            faults.append(f"empty body, but status {status} documents {', '.join(sorted(content))}")
        elif body and method.lower() != "head":
            if not content:
                faults.append(f"status {status} documents no body, got {content_type!r}")
            elif media not in content:
                faults.append(f"media type {media!r} is not documented for {status} "
                              f"(documented: {', '.join(sorted(content))})")
            elif is_json(media) and not error:
                if decode_fault:
                    faults.append(decode_fault)
                else:
                    schema = content[media].get("schema")
                    if schema is not None:
                        faults += self.body_errors(schema, decoded)
        if 200 <= status < 300:
            faults += self.request_errors(operation, request_content_type, request_body)
        if faults:
            raise ResponseContractError(f"{operation.name} answered {status}:\n  " + "\n  ".join(faults))
        return operation

    def request_errors(self, operation: Operation, content_type: str | None, body: bytes) -> list[str]:
        """What is wrong with a JSON request body that the operation accepted: its documented request schema must
        admit it (members the schema does not list are allowed, as the API ignores them, unless it says
        `additionalProperties`)."""
        media = media_type(content_type)
        content = (operation.spec.get("requestBody") or {}).get("content") or {}
        if not body or not is_json(media) or media not in content or "schema" not in content[media]:
            return []
        decoded, fault = _decode(content_type, body)
        if fault:
            return []  # the API accepted it, so it was not meant as JSON
        validator = Draft4Validator(to_json_schema(content[media]["schema"], closed=False),
                                    registry=self.request_registry, format_checker=FORMATS)
        errors = [leaf for error in validator.iter_errors(decoded) for leaf in _leaves(error)]
        return [f"accepted a request body its schema refuses: #/{'/'.join(str(p) for p in e.absolute_path)}: "
                f"{e.message}" for e in errors]


def _leaves(error):
    """The errors under an anyOf/oneOf that say what is wrong (not "is not of type 'null'"), or the error itself."""
    subs = [e for e in error.context or () if not (e.validator == "type" and e.validator_value == "null")]
    if not subs:
        yield error
        return
    for sub in subs:
        yield from _leaves(sub)


def _decode(content_type: str | None, body: bytes):
    """(parsed JSON, None) for a JSON media type; (None, fault) when it does not parse; (None, None) otherwise."""
    if not is_json(media_type(content_type)):
        return None, None
    try:
        return json.loads(body), None
    except ValueError as error:
        return None, f"the body is not JSON ({error})"


# --- the project's schema, and responses from Django's test client ---------------------------------------------

API_PREFIX = "/api/"
PROJECT_URLCONF = "config.urls"
NOT_CHECKED = ("/api/schema/", "/api/docs/")  # the schema itself and its Swagger UI page


@cache
def project_contract() -> ResponseContract:
    """The contract of the schema drf-spectacular generates from the project's URLconf, once per test session."""
    from drf_spectacular.generators import SchemaGenerator

    return ResponseContract(SchemaGenerator(urlconf=PROJECT_URLCONF).get_schema(request=None, public=True))


def check_client_response(response, contract: ResponseContract | None = None, *, request_body: bytes = b"",
                          request_content_type: str | None = None) -> Operation | None:
    """Check a response of Django's (or DRF's) test client when its path is under /api/ (and, when it is a 2xx,
    the JSON request body it accepted); raise ResponseContractError when the schema does not allow it."""
    __tracebackhide__ = True
    from django.conf import settings

    path, method = response.request["PATH_INFO"], response.request["REQUEST_METHOD"]
    if not path.startswith(API_PREFIX) or path.startswith(NOT_CHECKED):
        return None
    given = contract
    contract = contract or project_contract()
    if given is None and settings.ROOT_URLCONF != PROJECT_URLCONF and not isinstance(
            contract.operation(method, path), Operation):
        return None  # a view of a test's own URLconf (e.g. one that fails on purpose) is not the product's API
    if response.streaming:
        body = b"".join(response.streaming_content)
        response.streaming_content = [body]  # the test reads it again
    else:
        body = response.content
    return contract.check(method=method, path=path, status=response.status_code,
                                                  content_type=response.get("Content-Type"), body=body,
                                                  request_body=request_body,
                                                  request_content_type=request_content_type)
