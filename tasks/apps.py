from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Background work"

    def ready(self) -> None:
        from tasks.monitoring import connect_task_metrics
        from tasks.receivers import connect_receivers

        connect_receivers()
        connect_task_metrics()
