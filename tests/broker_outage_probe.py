"""Run by tests/test_request_path.py in a subprocess whose REDIS_URL points at a private redis-server the test stops.

Usage: python tests/broker_outage_probe.py <match id> <admin username>
1. With Redis up: saves the match once (a successful publish warms the broker connection, like a long-lived web
   process), then prints READY and waits for a line on stdin (the test stops Redis meanwhile).
2. With Redis down: saves the match completed in a transaction (what a request does), and saves it again through the
   admin change view (a real request); prints one JSON line with the timings and outcomes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from esports.tournaments.models import Match  # noqa: E402
from tasks.enqueue import flush_handed_off  # noqa: E402


def main(match_id: int, admin_username: str) -> None:
    match = Match.objects.get(pk=match_id)
    match.score = "warm-up"
    match.save()  # Redis up: this publish succeeds
    flush_handed_off()  # batch mode: the push is on the sender thread; the test reads the pending list next
    print("READY", flush=True)
    sys.stdin.readline()

    started = time.perf_counter()
    with transaction.atomic():
        match.state, match.winner, match.loser = Match.State.COMPLETED, match.participant1, match.participant2
        match.completed_at = timezone.now()
        match.save()
    save_seconds = time.perf_counter() - started  # includes the commit and the failed after-commit publish
    # Batch mode: the failing push runs on the sender thread, off the save; wait for it here (outside the timing) so
    # the pause has started before the admin request, as it had when the push was part of the save.
    flush_handed_off()
    match.refresh_from_db()

    client = Client()
    client.force_login(get_user_model().objects.get(username=admin_username))
    now = timezone.localtime()
    form = {
        "tournament": match.tournament_id,
        "round": "F",
        "match_num": "",
        "participant1": match.participant1_id,
        "participant2": match.participant2_id,
        "winner": match.participant2_id,
        "loser": match.participant1_id,
        "state": Match.State.COMPLETED,
        "score": "2-1",
        "completed_at_0": now.strftime("%Y-%m-%d"),
        "completed_at_1": now.strftime("%H:%M:%S"),
    }
    started = time.perf_counter()
    response = client.post(f"/admin/tournaments/match/{match.pk}/change/", form)
    request_seconds = time.perf_counter() - started
    match.refresh_from_db()
    flush_handed_off()  # the admin save's enqueue is logged before the report
    print(
        json.dumps(
            {
                "save_seconds": save_seconds,
                "saved_state": match.state,
                "request_seconds": request_seconds,
                "status": response.status_code,
                "winner_after_request": match.winner_id,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
