from django.apps import AppConfig


class AccountingConfig(AppConfig):
    name = "accounting"
    verbose_name = "Carbon accounting"

    def ready(self):
        # Register the Celery tasks in every process (web and worker), not only where autodiscovery runs.
        from accounting import tasks  # noqa: F401
