from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "esports.teams"
    label = "teams"
