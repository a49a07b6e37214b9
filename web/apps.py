from django.apps import AppConfig


class WebConfig(AppConfig):
    """The presentation layer: player pages and the JSON API over the read-side selectors."""

    name = "web"
    verbose_name = "Pages and API"
