from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "esports.moderation"
    label = "moderation"
    verbose_name = "Moderation"
