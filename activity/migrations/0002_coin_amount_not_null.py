# The amount check let a coin event with a NULL amount through (NULL > 0 is NULL, and a CHECK passes on NULL).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("activity", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="useractivity",
            name="activity_amount_only_on_coin_events",
        ),
        migrations.AddConstraint(
            model_name="useractivity",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("event_type__in", ["coins_earned", "coins_spent"]),
                        ("amount__isnull", False),
                        ("amount__gt", 0),
                    ),
                    models.Q(
                        models.Q(("event_type__in", ["coins_earned", "coins_spent"]), _negated=True),
                        ("amount__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="activity_amount_only_on_coin_events",
                violation_error_message="Coin events carry a positive amount; other events carry none.",
            ),
        ),
    ]
