from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from journeys import cors  # noqa: F401 - connects the per-site origin check
        from journeys.roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, dispatch_uid="journeys.sync_role_permissions")
