from django.apps import AppConfig


class AchievementsConfig(AppConfig):
    name = "esports.achievements"
    label = "achievements"
