"""Sign-ups in a process of their own, for tests/test_public_ids.py (8 at once) and bench/public_ids.py.

Usage: python tests/public_id_signups.py <username prefix> <count> [--without-public-ids]
Prints READY once Django is up, waits for a line on stdin (so that every process starts at the same moment), then
creates <count> users, one transaction each as a sign-up request would, and prints one JSON line: created, seconds.
--without-public-ids (benchmark baseline only, on a database whose guard trigger is disabled) skips the assignment.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402


def main(prefix: str, count: int, without_public_ids: bool) -> None:
    if without_public_ids:
        import esports.profiles.models as profile_models

        def without_public_id(created_at: datetime | None = None) -> Any:
            return None  # the baseline: the profile keeps public_id NULL (Any: the real one always returns an ID)

        profile_models.next_public_id = without_public_id
    User = get_user_model()
    print("READY", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for i in range(count):
        with transaction.atomic():
            User.objects.create_user(f"{prefix}{i}", first_name=f"Signup {i}")
    print(json.dumps({"created": count, "seconds": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), "--without-public-ids" in sys.argv[3:])
