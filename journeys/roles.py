"""What each staff role may do in the admin, kept in sync after every migrate.

Groups are created by a data migration; their permissions are attached here because
Django creates model permissions only after migrations ran. Other apps add their
models' rights to ``ROLE_PERMISSIONS`` at import time.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

# role -> {app_label.model: actions}
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "Marketers": {
        "journeys.site": ("view",),
        "journeys.journeypathrule": ("view", "add", "change", "delete"),
        "journeys.journeysession": ("view",),
        "journeys.conversionevent": ("view",),
        "journeys.visitor": ("view",),
        "journeys.quarantinedevent": ("view",),
    },
    "Approvers": {
        "journeys.site": ("view",),
        "journeys.journeypathrule": ("view",),
        "journeys.journeysession": ("view",),
        "journeys.conversionevent": ("view",),
        "journeys.visitor": ("view",),
        "journeys.quarantinedevent": ("view",),
        "journeys.idempotencyconflict": ("view",),
    },
    "Analysts": {
        "journeys.site": ("view",),
        "journeys.journeypathrule": ("view",),
        "journeys.journeysession": ("view",),
        "journeys.conversionevent": ("view",),
        "journeys.visitor": ("view",),
        "journeys.quarantinedevent": ("view",),
        "journeys.idempotencyconflict": ("view",),
    },
    # Answers visitors' requests to see or delete their data: the only role that may
    # export or erase a visitor (the API and the admin's actions check these rights).
    "Privacy officers": {
        "journeys.site": ("view",),
        "journeys.visitor": ("view", "export", "erase"),
        "journeys.journeysession": ("view",),
        "journeys.conversionevent": ("view",),
        "journeys.quarantinedevent": ("view",),
        "journeys.idempotencyconflict": ("view",),
    },
}


def sync_role_permissions(**kwargs) -> None:
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for model_label, actions in grants.items():
            app_label, model = model_label.split(".")
            codenames = [f"{action}_{model}" for action in actions]
            wanted += list(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
        group.permissions.set(wanted)
