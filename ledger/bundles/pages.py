"""The verify page: anyone drops a pledge bundle and sees what the offline verifier says of it."""

from django.shortcuts import render
from django.utils.translation import gettext

from config.common.pages import FORM_INVALID_STATUS, refused
from config.common.problems import problem_detail
from ledger.log.models import VerifierKey
from ledger.verifier.checks import load_bundle, verify_bundle
from ledger.verifier.errors import BundleFormatError, BundleInvalidError, RPCUnavailableError

MAX_BUNDLE_BYTES = 20 * 1024**2


def verify_page(request):
    """Anyone may check a pledge bundle against this registry's published verifier keys (or keys they give).

    Answers as POST /api/verify/ does: a verdict, valid or not, is a 200; a file that cannot be checked is the
    API's refusal (422 unusable-bundle, 503 when the chain cannot be asked), named in the Tanhui-Problem header."""
    verdict, failure, unusable, status, problem = None, None, None, 200, None
    if request.method == "POST":
        upload = request.FILES.get("bundle")
        extra_keys = [k.strip() for k in request.POST.get("keys", "").splitlines() if k.strip()]
        if upload is None:
            unusable, status = gettext("Choose or drop a bundle file first."), FORM_INVALID_STATUS
        elif upload.size > MAX_BUNDLE_BYTES:
            unusable = gettext("The file is %(size)s bytes; a bundle is at most %(limit)s bytes.") % {
                "size": upload.size, "limit": MAX_BUNDLE_BYTES}
            status = 413
        else:
            keys = extra_keys or list(VerifierKey.objects.values_list("vkey", flat=True))
            try:
                verdict = verify_bundle(load_bundle(upload.read()), trusted_keys=keys)
            except BundleInvalidError as exc:
                failure = exc
            except (BundleFormatError, RPCUnavailableError) as exc:
                unusable, status, problem = problem_detail(exc), exc.http_status, exc
    return refused(render(request, "ledger/verify.html", {
        "verdict": verdict, "failure": failure, "unusable": unusable,
        "keys": VerifierKey.objects.order_by("-created_at"),
    }, status=status), problem)
