"""Property-based API testing from the OpenAPI schema (schemathesis): for every operation and whatever parameters
hypothesis generates, no 5xx, and every response conforms to the schema (documented status code, content type,
body)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from esports.economy.models import DeltaCrownTransaction
from tests.factories import FollowFactory, MatchFactory, TournamentResultFactory, UserFactory, complete_match
from tests.ledger_helpers import record_inline

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def wsgi_keeps_test_connection():
    """Calling the WSGI app directly fires request_started/finished, whose close_old_connections would close the
    test's transaction-wrapped connection; Django's own test client detaches it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_data(db, monkeypatch, wsgi_keeps_test_connection):
    """A few players with real ledger rows (recorded inline), so generated ids and usernames can hit real data."""
    record_inline(monkeypatch)
    players = [UserFactory(username=f"api{i}") for i in range(3)]
    for i in range(3):
        match = MatchFactory(participant1__user=players[i], participant2__user=players[(i + 1) % 3])
        complete_match(match, match.participant1)
    TournamentResultFactory(winner__user=players[0], runner_up__user=players[1])
    DeltaCrownTransaction.objects.create(wallet=players[0].profile.wallet, amount=50, reason="prize")
    FollowFactory(follower=players[1], followee=players[0])
    players[2].profile.show_match_history = False
    players[2].profile.save()
    return players


@schema.parametrize()
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_api_never_errors_and_matches_its_schema(case, api_data):
    # Every default check but positive_data_acceptance: a well-formed id of a user that does not exist is a
    # documented 404, not a rejected valid request.
    # negative_data_rejection: an empty number in a query string ("?limit=") means the default, a documented choice
    # (test_api_errors.test_an_empty_page_size_means_the_default) that the schema cannot express.
    case.call_and_validate(excluded_checks=[positive_data_acceptance, negative_data_rejection])
