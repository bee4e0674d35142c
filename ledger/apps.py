from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Rights ledger"

    def ready(self):
        # Registers the registry's replay check with verify_ledger and its webhook task with Celery.
        from ledger import registry_checks, registry_tasks  # noqa: F401
