"""`python manage.py erase_user USER_ID --reason TICKET [--yes]`: GDPR erasure of one player (activity.erasure)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from activity.erasure import ErasureError, erase_user


class Command(BaseCommand):
    help = (
        "Erase a player: their events move to a new anonymous tombstone with personal data scrubbed, their stats "
        "row, profile and follows are removed, the account is scrubbed and deactivated. Irreversible."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("user_id", type=int)
        parser.add_argument("--reason", default="", help="Request reference to log (a ticket id; no personal data).")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, user_id: int, reason: str, yes: bool, **options) -> None:
        if (
            not yes
            and input(f"Erase user {user_id}? This cannot be undone. Type 'erase' to confirm: ").strip() != "erase"
        ):
            raise CommandError("Not confirmed; nothing was changed.")
        try:
            result = erase_user(user_id, reason=reason)
        except ErasureError as exc:
            raise CommandError(str(exc)) from None
        moved = ", ".join(f"{label} {n}" for label, n in result.source_rows.items() if n) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"user {user_id} erased: {result.events_rewritten} event(s) re-pointed to an anonymous tombstone, "
                f"{result.metadata_scrubbed} scrubbed; source rows: {moved}"
            )
        )
