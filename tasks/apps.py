from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Background work"

    def ready(self) -> None:
        from tasks.receivers import connect_receivers

        connect_receivers()
