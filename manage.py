#!/usr/bin/env python
import sys


def main() -> None:
    from config.settings import settings_module_select

    settings_module_select()  # DJANGO_SETTINGS_MODULE, else TANHUI_ENV (production or development)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
