"""Idempotent requests: the first response to an Idempotency-Key is stored and replayed to retries.

`idempotent` wraps an API view's POST handler; `idempotent_perform` is the service behind it.
"""

import functools
import hashlib
import json
from collections.abc import Callable

import rfc8785
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from ledger.core.errors import gettext_noop
from ledger.registry.errors import IdempotencyKeyReusedError, RegistryInputError
from ledger.registry.models import IdempotencyRecord


def request_fingerprint(*, method: str, path: str, body: object) -> str:
    """sha256 over the method, the path and the RFC 8785 canonical JSON of the parsed body.

    RFC 8785 holds only what I-JSON (RFC 7493) does: integers within ±(2**53 - 1), numbers a double can hold,
    strings of Unicode characters. A body beyond that cannot be fingerprinted, so a retry could not be recognised:
    RegistryInputError (422), nothing done. (The API's JSON parser already refuses 1e400, NaN and lone surrogates.)
    """
    digest = hashlib.sha256(f"{method.upper()} {path}\n".encode())
    try:
        canonical = rfc8785.dumps(body if body is not None else {})
    except rfc8785.IntegerDomainError as exc:
        raise RegistryInputError(gettext_noop("a request with an Idempotency-Key must hold integers within "
                                              "±(2^53 - 1), which canonical JSON (RFC 8785) can represent; send "
                                              "larger ones as strings (%(reason)s)"), reason=str(exc)) from None
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise RegistryInputError(gettext_noop("a request with an Idempotency-Key must be JSON that canonical JSON "
                                              "(RFC 8785) can represent: %(reason)s"), reason=str(exc)) from None
    digest.update(canonical)
    return digest.hexdigest()


def idempotent_perform(*, user, key: str, request_sha256: str,
                       perform: Callable[[], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """Run `perform` once per (user, key): return (status, body, replayed).

    The same key with the same request returns the first (successful) response again, replayed=True, and runs
    nothing; with another request it raises IdempotencyKeyReusedError. A `perform` that raises records nothing,
    so the key may be used again. Two concurrent first uses: the second waits on the unique index, then replays.
    """
    if not key or len(key) > 255:
        raise RegistryInputError(gettext_noop("Idempotency-Key must be 1-255 characters, got %(length)s"),
                                 length=len(key or ""))
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=user, key=key, request_sha256=request_sha256)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(user=user, key=key)
            if record.request_sha256 != request_sha256:
                raise IdempotencyKeyReusedError(
                    gettext_noop("Idempotency-Key %(idempotency_key)r was used for another request (method, path or "
                                 "body differ)"), idempotency_key=key) from None
            return record.response_status, record.response_body, True
        status, body = perform()
        record.response_status, record.response_body = status, body
        record.save(update_fields=["response_status", "response_body"])
    return status, body, False


# --- the API doorway ----------------------------------------------------------------------------------------

IDEMPOTENT_REPLAY_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_PARAMETERS = [
    OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                     description="Optional. The first response to a key is stored; a retry with the same key and body "
                                 "gets it again (a different request with the key is a 422)."),
    OpenApiParameter(IDEMPOTENT_REPLAY_HEADER, str, OpenApiParameter.HEADER, response=[200, 201], enum=["true"],
                     description="Present when this response is the stored one replayed for an Idempotency-Key."),
]


def idempotent(handler):
    """Wrap a POST handler: with an Idempotency-Key header, the first response is stored and replayed."""

    @functools.wraps(handler)
    def post(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return handler(self, request, *args, **kwargs)

        def perform():
            response = handler(self, request, *args, **kwargs)
            return response.status_code, json.loads(JSONRenderer().render(response.data))

        fingerprint = request_fingerprint(method=request.method, path=request.path, body=request.data)
        code, body, replayed = idempotent_perform(user=request.user, key=key, request_sha256=fingerprint,
                                                           perform=perform)
        response = Response(body, status=code)
        if replayed:
            response[IDEMPOTENT_REPLAY_HEADER] = "true"
        return response

    return extend_schema(parameters=IDEMPOTENCY_PARAMETERS)(post)
