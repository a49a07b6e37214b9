"""Following: the follows service (esports.profiles.follows), the follow button and lists on the pages, the feed page,
and the feed / follow endpoints of the API."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from activity.erasure import erase_user
from activity.event_types import EventType as E
from dispatch.publish import note_broker_failure
from esports.profiles.follows import CannotFollowSelf, FollowUnavailable, follow, unfollow
from esports.profiles.models import Follow, UserProfile
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, minutes, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def follows_of(user) -> set[int]:
    return set(Follow.objects.filter(follower=user).values_list("followee_id", flat=True))


# --- the service ---------------------------------------------------------------------------------------------------


def test_follow_and_unfollow_are_idempotent():
    a, b = UserFactory(), UserFactory()
    assert follow(follower_id=a.pk, followee_id=b.pk) is True
    assert follow(follower_id=a.pk, followee_id=b.pk) is False
    assert Follow.objects.filter(follower=a, followee=b).count() == 1
    assert unfollow(follower_id=a.pk, followee_id=b.pk) is True
    assert unfollow(follower_id=a.pk, followee_id=b.pk) is False
    assert not follows_of(a)


def test_following_yourself_is_a_clear_error():
    a = UserFactory()
    with pytest.raises(CannotFollowSelf, match="yourself"):
        follow(follower_id=a.pk, followee_id=a.pk)
    assert not follows_of(a)


def test_deactivated_erased_and_unknown_accounts_are_refused():
    a, banned, erased = UserFactory(), UserFactory(), UserFactory()
    User.objects.filter(pk=banned.pk).update(is_active=False)
    erase_user(erased.pk)
    for target in (banned.pk, erased.pk, 987654321):
        with pytest.raises(FollowUnavailable):
            follow(follower_id=a.pk, followee_id=target)
    with pytest.raises(FollowUnavailable, match="Your account"):
        follow(follower_id=banned.pk, followee_id=a.pk)
    assert not follows_of(a) and not follows_of(banned)


@pytest.mark.django_db(transaction=True)
def test_concurrent_follows_of_the_same_pair_make_one_row():
    # Nothing for a worker to record: a session worker still inserting these users' events while the teardown
    # TRUNCATEs deadlocked the flush (the enqueue skips its pushes during dispatch's broker-down pause).
    note_broker_failure()
    a, b = UserFactory(), UserFactory()
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(follow(follower_id=a.pk, followee_id=b.pk))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(results) == [False, False, False, True]
    assert Follow.objects.filter(follower=a, followee=b).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_follow_racing_a_deactivation_waits_for_it_and_is_refused():
    """The erasure's order (lock the account FOR UPDATE, delete its follows, deactivate, commit): a follow arriving
    meanwhile must wait for that commit and then see the account inactive, not slip a new row in after the delete."""
    from django.db import transaction

    a, b = UserFactory(), UserFactory()
    outcome: list[object] = []

    def follower() -> None:
        try:
            outcome.append(follow(follower_id=a.pk, followee_id=b.pk))
        except BaseException as exc:  # noqa: BLE001 - the assertion below names it
            outcome.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():
        User.objects.select_for_update().get(pk=b.pk)
        Follow.objects.filter(followee_id=b.pk).delete()
        User.objects.filter(pk=b.pk).update(is_active=False)
        thread = threading.Thread(target=follower)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), f"the follow did not wait for the deactivation: {outcome}"
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], FollowUnavailable), outcome
    assert not follows_of(a)


# --- pages ---------------------------------------------------------------------------------------------------------


def test_the_feed_page_needs_a_sign_in(client):
    response = client.get("/feed/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=/feed/")


def test_the_feed_page_shows_followed_players_events_with_their_names(client):
    viewer, star, stranger = UserFactory(), UserFactory(username="star_p"), UserFactory()
    UserProfile.objects.filter(pk=star.pk).update(display_name="Star Player")
    follow(follower_id=viewer.pk, followee_id=star.pk)
    chess = {"tournament_id": 2, "tournament": "Chess Open", "game": "chess", "round": "F"}
    record(
        event(star, E.TOURNAMENT_WON, at=BASE_TIME),
        event(star, E.TOURNAMENT_RUNNER_UP, at=BASE_TIME - minutes(1), meta=chess),
        event(star, E.TEAM_JOINED, at=BASE_TIME - minutes(2), visibility="private", meta={"team": "Secret Club"}),
        event(stranger, E.TOURNAMENT_WON, at=BASE_TIME, meta={"tournament": "Stranger Cup"}),
    )
    client.force_login(viewer)
    body = client.get("/feed/").content.decode()
    public_id = UserProfile.objects.get(pk=star.pk).public_id
    assert "Won Spring Cup" in body and "Runner-up at Chess Open" in body
    assert "Star Player" in body and public_id in body
    assert "Secret Club" not in body and "Stranger Cup" not in body
    only_chess = client.get("/feed/", {"game": "chess"}).content.decode()
    assert "Chess Open" in only_chess and "Won Spring Cup" not in only_chess
    bad = client.get("/feed/", {"types": "match_won,nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.content.decode()


def test_the_feed_page_pages_with_its_filters(client):
    viewer, star = UserFactory(), UserFactory()
    follow(follower_id=viewer.pk, followee_id=star.pk)
    record(*[event(star, E.TOURNAMENT_WON, at=BASE_TIME - minutes(i)) for i in range(25)])
    client.force_login(viewer)
    first = client.get("/feed/", {"types": "tournament_won"})
    next_url = first.context["next_url"]
    assert len(first.context["entries"]) == 20 and "types=tournament_won" in next_url
    second = client.get(next_url)
    assert second.status_code == 200 and len(second.context["entries"]) == 5
    assert second.context["newest_url"] == "/feed/?types=tournament_won"


def test_the_feed_page_costs_the_same_queries_at_3_and_at_40_followees(client):
    few, many = UserFactory(), UserFactory()
    players = [UserFactory() for _ in range(40)]
    for i, p in enumerate(players):
        record(event(p, E.TOURNAMENT_WON, at=BASE_TIME - minutes(i)))
        follow(follower_id=many.pk, followee_id=p.pk)
        if i < 3:
            follow(follower_id=few.pk, followee_id=p.pk)
    counts = []
    for viewer in (few, many):
        client.force_login(viewer)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/feed/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 8


def test_the_profile_page_has_a_csrf_protected_follow_button(client):
    viewer, star = UserFactory(), UserFactory(username="star_q")
    client.force_login(viewer)
    page = client.get("/u/star_q/").content.decode()
    assert 'action="/u/star_q/follow/"' in page and "csrfmiddlewaretoken" in page
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(viewer)
    assert strict.post("/u/star_q/follow/").status_code == 403  # no token
    assert not follows_of(viewer)
    response = client.post("/u/star_q/follow/")
    assert response.status_code == 302 and response["Location"] == "/u/star_q/"
    assert follows_of(viewer) == {star.pk}
    page = client.get("/u/star_q/").content.decode()
    assert 'action="/u/star_q/unfollow/"' in page and "Following" in page
    client.post("/u/star_q/unfollow/")
    assert not follows_of(viewer)
    assert client.get("/u/star_q/follow/").status_code == 405  # only POST changes anything


def test_follow_forms_refuse_anonymous_users_and_yourself(client):
    viewer = UserFactory(username="self_r")
    UserFactory(username="star_r")
    response = client.post("/u/star_r/follow/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(viewer)
    page = client.get("/u/self_r/").content.decode()
    assert "/follow/" not in page  # no button on your own profile
    refused = client.post("/u/self_r/follow/")
    assert refused.status_code == 400 and "yourself" in refused.content.decode()
    assert client.post("/u/nobody_here/follow/").status_code == 404


def test_the_follower_and_following_lists_show_public_ids_and_names(client):
    star, fan, banned = UserFactory(username="star_s"), UserFactory(username="fan_s"), UserFactory()
    UserProfile.objects.filter(pk=fan.pk).update(display_name="Big Fan")
    follow(follower_id=fan.pk, followee_id=star.pk)
    follow(follower_id=banned.pk, followee_id=star.pk)
    User.objects.filter(pk=banned.pk).update(is_active=False)
    followers_page = client.get("/u/star_s/followers/").content.decode()
    assert "Big Fan" in followers_page and UserProfile.objects.get(pk=fan.pk).public_id in followers_page
    assert banned.username not in followers_page
    following_page = client.get("/u/fan_s/following/").content.decode()
    assert "star_s" in following_page


# --- API -----------------------------------------------------------------------------------------------------------


def test_the_feed_api_needs_a_sign_in(client):
    response = client.get("/api/feed/")
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


def test_the_feed_api_pages_and_names_players(client):
    viewer, star = UserFactory(), UserFactory(username="star_t")
    UserProfile.objects.filter(pk=star.pk).update(display_name="Star T")
    follow(follower_id=viewer.pk, followee_id=star.pk)
    record(*[event(star, E.TOURNAMENT_WON, at=BASE_TIME - minutes(i)) for i in range(7)])
    record(event(star, E.COINS_EARNED, at=BASE_TIME + minutes(1)))
    client.force_login(viewer)
    first = client.get("/api/feed/", {"limit": 5}).json()
    assert len(first["results"]) == 5 and first["next_cursor"]
    item = first["results"][0]
    assert item["player"] == {
        "id": star.pk,
        "public_id": UserProfile.objects.get(pk=star.pk).public_id,
        "display_name": "Star T",
        "username": "star_t",
    }
    assert item["event_type"] == "tournament_won" and item["amount"] is None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 2 and second["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"types": "bogus"}, "invalid_type"),
        ({"types": "coins_spent"}, "invalid_type"),
        ({"game": "<b>"}, "invalid_game"),
        ({"limit": 51}, "invalid_parameter"),
        ({"cursor": "forged"}, "invalid_cursor"),
    ],
)
def test_bad_feed_parameters_are_a_400(client, params, code):
    client.force_login(UserFactory())
    response = client.get("/api/feed/", params)
    assert response.status_code == 400 and response.json()["error"] == code, response.json()


def test_follow_and_unfollow_through_the_api(client):
    viewer, star = UserFactory(), UserFactory()
    public_id = UserProfile.objects.get(pk=star.pk).public_id
    assert client.post(f"/api/users/{public_id}/follow/").status_code == 401
    client.force_login(viewer)
    made = client.post(f"/api/users/{public_id}/follow/")
    assert made.status_code == 201 and made.json() == {"following": True, "changed": True}
    again = client.post(f"/api/users/{star.pk}/follow/")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert follows_of(viewer) == {star.pk}
    own = client.post(f"/api/users/{viewer.pk}/follow/")
    assert own.status_code == 400 and own.json()["error"] == "cannot_follow_self"
    assert client.delete(f"/api/users/{star.pk}/follow/").status_code == 204
    assert client.delete(f"/api/users/{star.pk}/follow/").status_code == 204
    assert not follows_of(viewer)
    assert client.post("/api/users/987654321/follow/").status_code == 404


def test_the_follow_lists_through_the_api(client):
    star, fans = UserFactory(), [UserFactory() for _ in range(3)]
    for fan in fans:
        follow(follower_id=fan.pk, followee_id=star.pk)
    first = client.get(f"/api/users/{star.pk}/followers/", {"limit": 2}).json()
    second = client.get(first["next"]).json()
    listed = [r["player"]["id"] for r in first["results"] + second["results"]]
    assert sorted(listed) == sorted(f.pk for f in fans) and len(set(listed)) == 3
    following = client.get(f"/api/users/{fans[0].pk}/following/").json()
    assert [r["player"]["id"] for r in following["results"]] == [star.pk]
