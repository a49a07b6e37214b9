from django.apps import AppConfig


class TournamentsConfig(AppConfig):
    name = "esports.tournaments"
    label = "tournaments"
