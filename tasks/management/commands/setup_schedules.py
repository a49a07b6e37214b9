"""`python manage.py setup_schedules [--reset]`: create/update the periodic tasks in django-celery-beat's tables."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.schedules import UnknownTaskError, ensure_schedules


class Command(BaseCommand):
    help = (
        "Idempotent: create the periodic tasks that are missing and keep their task/queue in step with the code. "
        "Schedules, enabled flags and arguments edited in the admin are kept unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="also restore the default schedule, enabled flag, arguments and expiry of every entry",
        )

    def handle(self, *args, reset: bool, **options) -> None:
        try:
            outcomes = ensure_schedules(reset=reset)
        except UnknownTaskError as exc:
            raise CommandError(str(exc)) from None
        for outcome in outcomes:
            detail = f" ({', '.join(outcome.changed)})" if outcome.changed else ""
            self.stdout.write(f"{outcome.action:>9}: {outcome.name} -> {outcome.task} on {outcome.queue}{detail}")
        changed = sum(1 for o in outcomes if o.action != "unchanged")
        self.stdout.write(self.style.SUCCESS(f"schedules: {len(outcomes)} entries, {changed} created or updated"))
