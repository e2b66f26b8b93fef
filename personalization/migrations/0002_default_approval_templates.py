"""Default approval templates: the checklist an approver confirms per object type."""

from django.db import migrations

TEMPLATES = [
    ("contentvariant", "Content variant", ["Brand and tone are right", "Claims in the copy are true", "Links work"]),
    ("offer", "Offer", ["The discount is honoured at checkout", "The end date is right"]),
    (
        "experiment",
        "Experiment",
        ["Hypothesis and primary goal are set", "Guardrails (traffic share, weight floor, minimum sample) are right"],
    ),
    ("optimizationproposal", "Optimizer proposal", ["Evidence reviewed"]),
]


def forwards(apps, schema_editor):
    ApprovalTemplate = apps.get_model("personalization", "ApprovalTemplate")
    for object_type, name, checklist in TEMPLATES:
        ApprovalTemplate.objects.get_or_create(object_type=object_type, defaults={"name": name, "checklist": checklist})


class Migration(migrations.Migration):
    dependencies = [("personalization", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
