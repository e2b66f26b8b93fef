"""The approval template of the changes people request to a running experiment (stop, winner, pause, resume)."""

from django.db import migrations

CHECKLIST = [
    "The reason given justifies it, and the experiment's results were read",
    "Its effect on visitors is intended: a stop shows them the slot's usual content, a winner shows its "
    "variant to every visitor of the slot, a paused arm gets no new visitors",
]


def forwards(apps, schema_editor):
    ApprovalTemplate = apps.get_model("personalization", "ApprovalTemplate")
    ApprovalTemplate.objects.get_or_create(
        object_type="experimentaction", defaults={"name": "Experiment action", "checklist": CHECKLIST}
    )


def backwards(apps, schema_editor):
    apps.get_model("personalization", "ApprovalTemplate").objects.filter(object_type="experimentaction").delete()


class Migration(migrations.Migration):
    dependencies = [("personalization", "0007_experiment_exclusion_and_requested_actions")]

    operations = [migrations.RunPython(forwards, backwards)]
