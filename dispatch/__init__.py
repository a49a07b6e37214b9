"""How work reaches a worker, in one place: the task names and their queues (`dispatch.names`) and fail-fast
publishing with the broker-down pause and publish-on-commit (`dispatch.publish`).

A leaf package: it imports only Celery, kombu, Django's transaction API and `monitoring`, so `activity/`, `stats/`,
`esports/` and `tasks/` can all call it without importing each other. Nothing outside `tasks/` and this package
names a task or a queue by string. This module imports nothing, so importing `dispatch.names` stays cheap.
"""
