from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from web.api import feed, ratings, views
from web.api.career import UserSeasonsView, UserTournamentRowsView
from web.api.errors import unknown_api_path
from web.api.h2h import HeadToHeadView
from web.api.search import UserSearchView

app_name = "api"

# User ids are captured as strings so that a malformed id is a clear 400 (views.parse_user_id), not a bare 404.
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("h2h/", HeadToHeadView.as_view(), name="h2h"),
    path("users/search/", UserSearchView.as_view(), name="user-search"),
    path("users/lookup/", views.UserLookupView.as_view(), name="user-lookup"),
    path("users/<str:user_id>/", views.UserView.as_view(), name="user"),
    path("users/<str:user_id>/stats/", views.UserStatsView.as_view(), name="user-stats"),
    path("users/<str:user_id>/activity/", views.UserActivityView.as_view(), name="user-activity"),
    path("users/<str:user_id>/matches/", views.UserMatchesView.as_view(), name="user-matches"),
    path("users/<str:user_id>/tournaments/", views.UserTournamentsView.as_view(), name="user-tournaments"),
    path("users/<str:user_id>/tournament-history/", UserTournamentRowsView.as_view(), name="user-tournament-rows"),
    path("users/<str:user_id>/seasons/", UserSeasonsView.as_view(), name="user-seasons"),
    path("users/<str:user_id>/economy/", views.UserEconomyView.as_view(), name="user-economy"),
    path("users/<str:user_id>/export/", views.UserExportView.as_view(), name="user-export"),
    path("leaderboards/<str:board>/", views.LeaderboardView.as_view(), name="leaderboard"),
    path("feed/", feed.FeedView.as_view(), name="feed"),
    path("users/<str:user_id>/follow/", feed.FollowView.as_view(), name="user-follow"),
    path("users/<str:user_id>/followers/", feed.FollowersView.as_view(), name="user-followers"),
    path("users/<str:user_id>/following/", feed.FollowingView.as_view(), name="user-following"),
    path(
        "users/<str:user_id>/ratings/<str:game>/history/",
        ratings.UserRatingHistoryView.as_view(),
        name="user-rating-history",
    ),
    path("ratings/<str:game>/leaderboard/", ratings.RatingLeaderboardView.as_view(), name="rating-leaderboard"),
    # Last: any other /api/ path is a JSON 404 (not the HTML page the site's 404 is).
    re_path(r"^.*$", unknown_api_path, name="not-found"),
]
