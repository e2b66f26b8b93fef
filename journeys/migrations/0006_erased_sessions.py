"""The keyed hashes of erased sessions (journeys.services.privacy.visitor_erase)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0005_site_origins_and_secret_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="ErasedSession",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("session_hash", models.CharField(max_length=64)),
                ("erased_at", models.DateTimeField()),
                (
                    "site",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="journeys.site"
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("site", "session_hash"), name="erased_session_once")],
            },
        ),
    ]
