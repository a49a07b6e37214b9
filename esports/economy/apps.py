from django.apps import AppConfig


class EconomyConfig(AppConfig):
    name = "esports.economy"
    label = "economy"

    def ready(self) -> None:
        from esports.economy import receivers  # noqa: F401
