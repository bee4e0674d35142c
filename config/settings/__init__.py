"""Settings layers: `base` (every environment, embedded defaults), `test`, `production` (secrets required).

`settings_module_select` is what manage.py, config.wsgi, config.asgi and config.celery call before Django starts.
"""

import os

from django.core.exceptions import ImproperlyConfigured

SETTINGS_MODULES = {
    "development": "config.settings.base",
    "production": "config.settings.production",
}


def settings_module_select() -> str:
    """Set DJANGO_SETTINGS_MODULE when it is unset, from TANHUI_ENV (unset: development), and return it.

    An explicit DJANGO_SETTINGS_MODULE always wins. An unknown TANHUI_ENV raises ImproperlyConfigured rather than
    fall back to development settings, whose embedded defaults generate secrets on the machine they run on.
    """
    explicit = os.environ.get("DJANGO_SETTINGS_MODULE")
    if explicit:
        return explicit
    environment = (os.environ.get("TANHUI_ENV") or "development").strip().lower()
    if environment not in SETTINGS_MODULES:
        raise ImproperlyConfigured(
            f"TANHUI_ENV must be one of {', '.join(SETTINGS_MODULES)}; got {os.environ.get('TANHUI_ENV')!r}")
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULES[environment]
    return SETTINGS_MODULES[environment]
