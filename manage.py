#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config.development import development_environment, is_development

    if is_development():
        # No DATABASE_URL/REDIS_URL: the embedded servers and this checkout's keys, for
        # this command and the processes it starts (config/development.py).
        development_environment()

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
