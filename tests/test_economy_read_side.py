"""The economy page and API (issue 13, item 4): the wallet's balance and lifetimes and its transaction history with
reversal links, cursor-paginated; the player and staff only (nobody else sees an amount); a bad cursor is a clear
400."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from esports.economy import services as economy
from tests.factories import FollowFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache", "enqueued")]


def api(user) -> str:
    return f"/api/users/{user.pk}/economy/"


def page(user) -> str:
    return f"/u/{user.username}/economy/"


@pytest.fixture
def player():
    """Earned 500 then 30, spent 120, and the 30 reversed (un-earned): balance 380, earned 500, spent 120."""
    user = UserFactory()
    economy.credit(user, 500, "Prize for Spring Cup")
    economy.debit(user, 120, "shop: banner")
    bonus = economy.credit(user, 30, "bonus")
    economy.reverse(bonus, "bonus paid by mistake")
    return user


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_player_gets_balance_lifetimes_and_history_with_reversal_links_from_the_api(client, player):
    body = signed_in(client, player).get(api(player)).json()

    assert (body["balance"], body["lifetime_earned"], body["lifetime_spent"]) == (380, 500, 120)
    rows = body["results"]
    assert [(r["amount"], r["side"], r["reason"]) for r in rows] == [
        (-30, "earned", "bonus paid by mistake"),
        (30, "earned", "bonus"),
        (-120, "spent", "shop: banner"),
        (500, "earned", "Prize for Spring Cup"),
    ]
    reversal, bonus = rows[0], rows[1]
    assert (reversal["reverses"], reversal["reversed_by"]) == (bonus["id"], None)
    assert (bonus["reverses"], bonus["reversed_by"]) == (None, reversal["id"])
    assert rows[3]["title"] == "Earned 500 DeltaCoins" and reversal["title"] == "Earning of 30 DeltaCoins reversed"
    assert body["next_cursor"] is None


def test_the_page_shows_the_balances_and_each_transaction_with_its_reversal_link(client, player):
    html = signed_in(client, player).get(page(player)).content.decode()

    assert re.search(r'Balance</div><div class="value">380<', html)
    assert re.search(r'Earned</div><div class="value">500<', html)
    assert re.search(r'Spent</div><div class="value">120<', html)
    bonus_id = player.profile.wallet.transactions.get(reason="bonus").pk
    assert f'reverses <a href="#txn-{bonus_id}">#{bonus_id}</a>' in html
    assert f'id="txn-{bonus_id}"' in html and "reversed by <a" in html
    assert "Spent 120 DeltaCoins" in html and "Prize for Spring Cup" in html


def test_staff_see_any_players_economy(client, player):
    staff = UserFactory(is_staff=True)
    assert signed_in(client, staff).get(api(player)).json()["balance"] == 380
    assert b"380" in client.get(page(player)).content


@pytest.mark.parametrize("viewer", ["anonymous", "other", "follower"])
def test_nobody_else_sees_the_economy_nor_any_amount(client, player, viewer):
    if viewer != "anonymous":
        user = UserFactory()
        if viewer == "follower":
            FollowFactory(follower=user, followee=player)
        signed_in(client, user)

    response = client.get(api(player))
    site = client.get(page(player))

    assert response.status_code == (401 if viewer == "anonymous" else 403)
    assert site.status_code == 403
    for text in (response.content.decode(), site.content.decode()):
        assert "380" not in text and "Prize for Spring Cup" not in text and "balance" not in text.lower()


def test_the_history_pages_by_cursor_without_skipping_or_repeating_a_transaction(client):
    user = UserFactory()
    moved = [economy.credit(user, n, f"coin {n}").pk for n in range(1, 26)]
    signed_in(client, user)

    first = client.get(api(user)).json()
    second = client.get(api(user), {"cursor": first["next_cursor"]}).json()
    small = client.get(api(user), {"limit": 7}).json()

    assert len(first["results"]) == 20 and len(second["results"]) == 5 and second["next_cursor"] is None
    assert [r["id"] for r in first["results"] + second["results"]] == moved[::-1]
    assert len(small["results"]) == 7 and small["next_cursor"] is not None
    html = client.get(page(user)).content.decode()
    older = re.search(r'href="([^"]*cursor=[^"]+)"', html)
    assert older is not None and "coin 5<" in client.get(older.group(1).replace("&amp;", "&")).content.decode()


def test_a_bad_or_foreign_cursor_is_a_clear_400(client, player):
    other = UserFactory()
    for n in range(1, 23):
        economy.credit(other, n, "x")
    client.force_login(UserFactory(is_staff=True))
    foreign = client.get(api(other)).json()["next_cursor"]
    activity_cursor = client.get(f"/api/users/{other.pk}/activity/", {"limit": 1}).json()["next_cursor"]

    for cursor in ("garbage", foreign, activity_cursor, foreign[:-3] + "abc"):
        if cursor is None:
            continue
        response = client.get(api(player), {"cursor": cursor})
        assert response.status_code == 400, (cursor, response.content)
        assert response.json()["error"] == "invalid_cursor" and "cursor" in response.json()["detail"].lower()
    site = client.get(page(player), {"cursor": "garbage"})
    assert site.status_code == 400 and b"Invalid cursor" in site.content
    assert client.get(api(player), {"limit": 51}).status_code == 400


def test_a_player_without_a_wallet_has_zero_balances_and_no_history(client):
    user = UserFactory()
    user.profile.wallet.delete()
    body = signed_in(client, user).get(api(user)).json()
    assert (body["balance"], body["lifetime_earned"], body["lifetime_spent"], body["results"]) == (0, 0, 0, [])


def test_a_page_of_history_costs_the_same_queries_however_many_reversals_it_shows(client):
    user = UserFactory()
    signed_in(client, user)

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as api_queries:
            assert client.get(api(user)).status_code == 200
        with CaptureQueriesContext(connection) as page_queries:
            assert client.get(page(user)).status_code == 200
        return len(api_queries), len(page_queries)

    economy.credit(user, 5, "first")
    few = queries()
    for n in range(10):
        economy.reverse(economy.credit(user, 10 + n, f"credit {n}"))  # 20 rows, each linked to another
    assert queries() == few
