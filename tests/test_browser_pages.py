"""The career pages and the operator pages in a real browser (Chromium, headless): each loads without a console
error, shows the figures the API gives for the same player, and draws its charts (an SVG with the expected bars).

Two seasons of real ATP history, recorded once for the module; one browser session for all the pages.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test.utils import override_settings
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from activity.models import BackfillRun
from activity.privacy import relation_between
from esports.profiles.models import UserProfile
from stats.models import ReconciliationRun
from stats.ratings.curve import MAX_POINTS, rating_curves
from stats.ratings.models import RatingHistory
from tests.browser import console_errors, live_server, start_chromium
from tests.career_data import recorded_atp_history
from tests.ratings_support import settle

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
SEASONS = (2023, 2024)
ADMIN, PASSWORD = "browser-admin", "browser-admin-password"


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker):
    # A cache of the module's own: a board or stats cached by an earlier module name users of a flushed database.
    own_cache = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"browser-{uuid.uuid4().hex[:8]}"}}
    with (
        override_settings(CACHES=own_cache),
        recorded_atp_history(django_db_blocker, *SEASONS),
        django_db_blocker.unblock(),
    ):
        settle()  # the ratings of the backfilled history (their replay), for the rating chart
        get_user_model().objects.create_superuser(ADMIN, "admin@example.com", PASSWORD)
        now = timezone.now()
        for i, (drifted, missing) in enumerate(((0, 0), (3, 12), (1, 4))):
            ReconciliationRun.objects.create(
                started_at=now - timedelta(days=3 - i),
                status="succeeded",
                users_drifted=drifted,
                missing_events_total=missing,
            )
        with live_server() as url:
            yield url


@pytest.fixture(scope="module")
def browser(site):
    driver = start_chromium()
    yield driver
    driver.quit()


def open_page(browser, url: str):
    browser.get(url)
    assert browser.find_element(By.TAG_NAME, "main" if "/admin/" not in url else "body")
    errors = console_errors(browser)
    assert not errors, f"{url}: {errors}"
    return browser


def text(browser, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text.strip()


def bars(browser, chart: str) -> list:
    return browser.find_elements(By.CSS_SELECTOR, f"{chart} svg.chart rect.bar")


@pytest.fixture(scope="module")
def champion(site) -> dict:
    """The tournaments_won leader of the two seasons, as the API names him."""
    from django.test import Client

    return Client().get("/api/leaderboards/tournaments_won/").json()["results"][0]


def test_profile_shows_the_apis_figures_and_draws_its_charts(browser, site, client, champion):
    pid = champion["public_id"]
    stats = client.get(f"/api/users/{pid}/stats/").json()
    seasons = client.get(f"/api/users/{pid}/seasons/").json()["results"]
    recent = client.get(f"/api/users/{pid}/matches/", {"limit": 20}).json()["results"]
    open_page(browser, f"{site}/p/{pid}/")
    for field in ("tournaments_won", "matches_won", "matches_lost", "matches_played"):
        assert text(browser, f'[data-stat="{field}"]') == str(stats[field]), field
    assert len(seasons) == len(SEASONS)
    record = bars(browser, '[data-chart="record"]')
    assert len(record) == 2 * len(seasons)  # won and lost per season
    assert [b.get_attribute("data-value") for b in record] == [
        str(v) for s in seasons for v in (s["wins"], s["losses"])
    ]
    assert [b.get_attribute("data-value") for b in bars(browser, '[data-chart="titles"]')] == [
        str(s["titles"]) for s in seasons
    ]
    letters = {"won": "W", "lost": "L", "forfeit": "WO"}
    form = [b.get_attribute("data-value") for b in bars(browser, '[data-chart="form"]')]
    assert form == [letters[m["outcome"]] for m in reversed(recent)] and len(form) == 20
    svg = browser.find_element(By.CSS_SELECTOR, '[data-chart="record"] svg')
    assert svg.get_attribute("role") == "img" and svg.find_element(By.TAG_NAME, "desc")


def test_profile_draws_the_rating_curve_of_the_history(browser, site, champion):
    profile = UserProfile.objects.get(user__username=champion["username"])
    (curve,) = rating_curves(relation_between(AnonymousUser(), profile))
    rated = RatingHistory.objects.filter(profile_id=profile.pk, game=curve.game).count()
    assert curve.matches_rated == rated > MAX_POINTS  # two seasons of a champion: a downsampled curve
    open_page(browser, f"{site}/p/{champion['public_id']}/")
    chart = f'[data-chart="rating"][data-game="{curve.game}"]'
    points = browser.find_elements(By.CSS_SELECTOR, f"{chart} svg.chart g.point")
    assert len(points) == len(curve.points) <= MAX_POINTS
    assert [p.get_attribute("data-value") for p in points] == [f"{p.rating:.1f}" for p in curve.points]
    svg = browser.find_element(By.CSS_SELECTOR, f"{chart} svg")
    assert svg.get_attribute("role") == "img" and curve.game in svg.find_element(By.TAG_NAME, "title").get_attribute(
        "textContent"
    )


def test_match_and_tournament_history_rows_equal_the_api(browser, site, client, champion):
    pid, username = champion["public_id"], champion["username"]
    first = client.get(f"/api/users/{pid}/matches/").json()["results"][0]
    open_page(browser, f"{site}/u/{username}/matches/")
    row = browser.find_element(By.CSS_SELECTOR, "table.matches tbody tr")
    assert row.get_attribute("data-match-id") == str(first["match_id"])
    assert row.find_element(By.CSS_SELECTOR, "td.opponent").text == first["opponent"]["name"]
    assert row.find_element(By.CSS_SELECTOR, "td.score").text == first["score"]
    assert row.find_element(By.CSS_SELECTOR, "td.round").text == first["round"]

    api_rows = client.get(f"/api/users/{pid}/tournament-history/").json()["results"]
    open_page(browser, f"{site}/u/{username}/tournaments/")
    shown = browser.find_elements(By.CSS_SELECTOR, "table.tournament-rows tbody tr")
    assert [r.get_attribute("data-tournament-id") for r in shown] == [str(r["tournament_id"]) for r in api_rows]
    assert shown[0].find_element(By.CSS_SELECTOR, "td.wl").text == f"{api_rows[0]['wins']}-{api_rows[0]['losses']}"


def test_head_to_head_leaderboard_and_search_equal_the_api(browser, site, client, champion):
    board = client.get("/api/leaderboards/matches_won/").json()["results"]
    a, b = champion["public_id"], next(e["public_id"] for e in board if e["public_id"] != champion["public_id"])
    h2h = client.get("/api/h2h/", {"a": a, "b": b}).json()
    open_page(browser, f"{site}/h2h/{a}/{b}/")
    assert text(browser, '[data-h2h="a_wins"]') == str(h2h["a_wins"])
    assert text(browser, '[data-h2h="b_wins"]') == str(h2h["b_wins"])
    listed = browser.find_elements(By.CSS_SELECTOR, "table.matches tbody tr[data-match-id]")
    assert [r.get_attribute("data-match-id") for r in listed] == [str(m["match_id"]) for m in h2h["matches"]["results"]]

    open_page(browser, f"{site}/leaderboards/?board=matches_won")
    assert board[0]["display_name"] in browser.find_element(By.CSS_SELECTOR, "main table tbody tr").text

    query = champion["display_name"].split()[-1][:5].lower()  # part of the surname
    hits = client.get("/api/users/search/", {"q": query}).json()["results"]
    open_page(browser, f"{site}/players/?q={query}")
    shown = browser.find_elements(By.CSS_SELECTOR, "table.search-results tbody tr[data-user-id]")
    assert [r.get_attribute("data-user-id") for r in shown] == [str(h["id"]) for h in hits]


def test_operator_pages_load_and_chart_the_runs(browser, site):
    browser.get(f"{site}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(ADMIN)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
    # The click only starts the sign-in: opening the next page before its response lands races it (and that page
    # then redirects to the login form).
    WebDriverWait(browser, 15).until(lambda b: "/admin/login/" not in b.current_url)
    console_errors(browser)  # the login page itself is Django's
    open_page(browser, f"{site}/admin/stats/reconciliationrun/")
    assert len(bars(browser, "#reconciliation-chart")) == 2 * 3  # drifted users and missing events, three runs
    run_id = BackfillRun.objects.order_by("-pk").values_list("pk", flat=True).first()
    open_page(browser, f"{site}/admin/activity/backfillrun/{run_id}/change/")
    assert len(bars(browser, "#backfill-rate-chart")) == BackfillRun.objects.filter(pk__lte=run_id).count()
