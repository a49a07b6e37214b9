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
        # Ratings: a new latest match folded in the same transaction, anything else marked for a replay.
        from stats.ratings.live import on_events_inserted

        register_projector(on_events_inserted)
        # After the counters: drop the cached lifetime stats of exactly the touched users, once the transaction commits.
        from stats.cache import invalidate_touched_users

        register_projector(invalidate_touched_users)

        from activity.erasure import register_erasure_listener
        from stats.erasure import on_user_erased

        register_erasure_listener(on_user_erased)
