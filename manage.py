#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    # Management commands are long jobs (backfill, reconciliation, imports): no web statement timeout. runserver
    # serves requests and keeps it.
    if len(sys.argv) > 1 and sys.argv[1] != "runserver":
        from project.db_timeouts import use_job_timeouts

        use_job_timeouts()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
