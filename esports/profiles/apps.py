from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "esports.profiles"
    label = "profiles"

    def ready(self) -> None:
        from esports.profiles import receivers  # noqa: F401
