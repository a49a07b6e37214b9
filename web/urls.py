from django.contrib.auth import views as auth_views
from django.urls import include, path

from web import feed_views, h2h_views, search_views, views

pages = [
    path("", views.home, name="home"),
    path("leaderboards/", views.leaderboards_page, name="leaderboards"),
    path("players/", search_views.search_page, name="search"),
    path("h2h/<str:a>/<str:b>/", h2h_views.h2h_page, name="h2h"),
    path("p/<str:public_id>/", views.public_profile_page, name="public-profile"),
    path("u/<str:username>/", views.profile_page, name="profile"),
    path("u/<str:username>/activity/", views.activity_page, name="activity"),
    path("u/<str:username>/matches/", views.matches_page, name="matches"),
    path("u/<str:username>/tournaments/", views.tournaments_page, name="tournaments"),
    path("u/<str:username>/economy/", views.economy_page, name="economy"),
    path("u/<str:username>/export.json", views.export_download, name="export"),
    path("feed/", feed_views.feed_page, name="feed"),
    path("u/<str:username>/follow/", feed_views.follow_view, name="follow"),
    path("u/<str:username>/unfollow/", feed_views.unfollow_view, name="unfollow"),
    path("u/<str:username>/followers/", feed_views.followers_page, name="followers"),
    path("u/<str:username>/following/", feed_views.following_page, name="following"),
]

# Included from project/urls.py at the root: the pages under the "web" namespace, the API, and the sign-in pages
# (Django's own views; names "login"/"logout" stay global as django.contrib.auth expects).
urlpatterns = [
    path("", include((pages, "web"))),
    path("api/", include("web.api.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
