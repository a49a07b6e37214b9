from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0002_public_ids"),
    ]

    # Filled from the wallets by economy 0004 (which computes the wallets from their transactions first).
    operations = [
        migrations.AddField(
            model_name="userprofile",
            name="deltacoin_balance",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.AddField(
            model_name="userprofile",
            name="lifetime_earnings",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
    ]
