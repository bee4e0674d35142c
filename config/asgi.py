from django.core.asgi import get_asgi_application

from config.settings import settings_module_select

settings_module_select()  # DJANGO_SETTINGS_MODULE, else TANHUI_ENV (production or development)
application = get_asgi_application()
