"""The four default journey paths of PRODUCT.md section 3, and the three staff roles."""

from django.db import migrations

DEFAULT_RULES = [
    (
        1,
        "Mobile social video",
        ["mobile"],
        ["tiktok", "instagram", "youtube_shorts"],
        None,
        "mobile_tiktok_fast_track",
    ),
    (2, "Desktop research", ["desktop"], ["google", "direct", "referral"], None, "desktop_research_deep"),
    (3, "Returning visitor", [], [], True, "returning_visitor_personalized"),
    (4, "Everyone else", [], [], None, "standard_conversion_funnel"),
]

GROUPS = ["Marketers", "Approvers", "Analysts"]


def forwards(apps, schema_editor):
    JourneyPathRule = apps.get_model("journeys", "JourneyPathRule")
    for priority, name, devices, sources, returning, path in DEFAULT_RULES:
        JourneyPathRule.objects.get_or_create(
            site=None,
            priority=priority,
            defaults={
                "name": name,
                "device_types": devices,
                "sources": sources,
                "returning": returning,
                "path": path,
            },
        )
    Group = apps.get_model("auth", "Group")
    for name in GROUPS:
        Group.objects.get_or_create(name=name)


def backwards(apps, schema_editor):
    apps.get_model("journeys", "JourneyPathRule").objects.filter(site=None, priority__in=[1, 2, 3, 4]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
