from django.core.wsgi import get_wsgi_application

from config.settings import settings_module_select

settings_module_select()  # DJANGO_SETTINGS_MODULE, else TANHUI_ENV (production or development)
application = get_wsgi_application()
