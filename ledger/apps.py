from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Rights ledger"

    def ready(self):
        # The registry's replay check joins verify_ledger; webhooks hear of every append; Celery learns the tasks.
        from ledger.anchoring import tasks as anchoring_tasks  # noqa: F401
        from ledger.log import tasks as log_tasks  # noqa: F401
        from ledger.log.services import on_entry_appended
        from ledger.registry import checks  # noqa: F401
        from ledger.webhooks import tasks as webhook_tasks  # noqa: F401
        from ledger.webhooks.services import webhook_deliveries_create

        on_entry_appended(webhook_deliveries_create)
