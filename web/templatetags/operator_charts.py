"""Charts of the operator pages (admin), drawn by web.charts: the admin templates load this library, so the apps'
admins hand over model rows and import nothing from web (the layering stays esports <- activity <- stats <- web).

    {% load operator_charts %}
    {% reconciliation_chart runs %}   the last runs' drifted users and missing events, oldest first
    {% backfill_rate_chart runs %}    the last runs' recording rate (events/s), oldest first
"""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from web.charts import Series, bar_chart

register = template.Library()


def _label(run) -> str:
    return f"#{run.pk}"


@register.simple_tag
def reconciliation_chart(runs) -> SafeString:
    runs = list(runs)
    if not runs:
        return SafeString("")
    desc = "; ".join(
        f"run {r.pk} ({r.started_at:%Y-%m-%d %H:%M}): {r.users_drifted} users drifted, "
        f"{r.missing_events_total} missing events"
        for r in runs
    )
    return bar_chart(
        f"Drift and missing events over the last {len(runs)} reconciliation runs",
        desc + ".",
        [_label(r) for r in runs],
        [
            Series("users drifted", "solid", [r.users_drifted for r in runs], "#b07a00"),
            Series("missing events", "dots", [r.missing_events_total for r in runs]),
        ],
    )


@register.simple_tag
def backfill_rate_chart(runs) -> SafeString:
    runs = list(runs)
    if not runs:
        return SafeString("")
    desc = "; ".join(f"run {r.pk} ({r.created_at:%Y-%m-%d %H:%M}): {r.rate:,.0f} events/s" for r in runs)
    return bar_chart(
        f"Backfill rate over the last {len(runs)} runs (events per second)",
        desc + ".",
        [_label(r) for r in runs],
        [Series("events/s", "solid", [round(r.rate) for r in runs], "#2f6fb0")],
    )
