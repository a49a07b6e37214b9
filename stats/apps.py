from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "stats"
    verbose_name = "Player stats"

    def ready(self) -> None:
        from activity.projection import register_projector
        from stats.apply import apply_inserted_events

        # The ledger calls this inside the transaction that inserted the events (stats subscribes; activity never
        # imports stats).
        register_projector(apply_inserted_events)
