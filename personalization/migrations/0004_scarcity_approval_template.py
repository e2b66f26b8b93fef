"""The approval template of scarcity rules: the approver confirms the data behind the claim."""

from django.db import migrations

CHECKLIST = [
    "The claim is backed by the named data source: views = this site's exposures and touchpoints of the offer's "
    "SKU; purchases = this site's purchase conversions of the SKU today; stock = the offer's reported stock and "
    "restock date; deadline and flash sale = the offer's approved end",
    "Numbers come only from placeholders, and social proof states its window",
    "The offer's end is real: its terms end then and are not relaunched within the cooldown",
    "Tone and legal review (unfair commercial practices: no pressure beyond the facts)",
]


def forwards(apps, schema_editor):
    ApprovalTemplate = apps.get_model("personalization", "ApprovalTemplate")
    ApprovalTemplate.objects.get_or_create(
        object_type="scarcityrule", defaults={"name": "Scarcity rule", "checklist": CHECKLIST}
    )


def backwards(apps, schema_editor):
    apps.get_model("personalization", "ApprovalTemplate").objects.filter(object_type="scarcityrule").delete()


class Migration(migrations.Migration):
    dependencies = [("personalization", "0003_scarcity")]

    operations = [migrations.RunPython(forwards, backwards)]
