"""Privacy requests: the export and erase permissions, and the "Privacy officers" role that
holds them (its rights are attached after migrate by journeys.roles)."""

from django.db import migrations

PRIVACY_OFFICERS = "Privacy officers"


def role_create(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=PRIVACY_OFFICERS)


def role_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=PRIVACY_OFFICERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0006_erased_sessions"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="visitor",
            options={
                "permissions": [
                    ("export_visitor", "Can export everything held about a visitor"),
                    ("erase_visitor", "Can erase everything held about a visitor"),
                ]
            },
        ),
        migrations.RunPython(role_create, role_delete),
    ]
