from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from web.api import feed, ratings, views

app_name = "api"

# User ids are captured as strings so that a malformed id is a clear 400 (views.parse_user_id), not a bare 404.
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("users/lookup/", views.UserLookupView.as_view(), name="user-lookup"),
    path("users/<str:user_id>/", views.UserView.as_view(), name="user"),
    path("users/<str:user_id>/stats/", views.UserStatsView.as_view(), name="user-stats"),
    path("users/<str:user_id>/activity/", views.UserActivityView.as_view(), name="user-activity"),
    path("users/<str:user_id>/matches/", views.UserMatchesView.as_view(), name="user-matches"),
    path("users/<str:user_id>/tournaments/", views.UserTournamentsView.as_view(), name="user-tournaments"),
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
]
