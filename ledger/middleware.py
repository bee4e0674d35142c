"""No response shows a ledger entry that is not yet on disk (docs/ledger.md, "Commit and durability")."""

from ledger.services import entries_flush_before_showing


class EntriesOnDiskMiddleware:
    """After the view has read and rendered everything, wait until whatever it could read is on disk.

    On PostgreSQL an entry that another writer has just committed can be read for a moment before its WAL flush.
    This costs one statement per request that used the database; it writes and waits only when WAL is pending.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        entries_flush_before_showing()
        return response
