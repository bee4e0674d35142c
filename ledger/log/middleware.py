"""No response shows a ledger entry that is not yet on disk (docs/ledger.md, "Commit and durability")."""

from urllib.parse import urlsplit

from django.conf import settings

from config.common.problems import error_problem
from ledger.core.errors import DurabilityUnconfirmedError
from ledger.log.services import entries_flush_before_showing


class EntriesOnDiskMiddleware:
    """After the view has read and rendered everything, wait until whatever it could read is on disk.

    On PostgreSQL an entry that another writer has just committed can be read for a moment before its WAL flush.
    Successful responses wait with one statement when a database connection is open (with persistent
    connections, that is every such response); it writes and waits only when WAL is pending. Error responses and
    static files show no entries and do not wait.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.static_prefix = "/" + urlsplit(settings.STATIC_URL).path.lstrip("/")

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code >= 400 or request.path.startswith(self.static_prefix):
            return response
        try:
            entries_flush_before_showing()
        except DurabilityUnconfirmedError as error:
            return error_problem(request, error)
        return response
