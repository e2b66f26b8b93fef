from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Personalization"

    def ready(self) -> None:
        from core import hooks
        from personalization import roles  # noqa: F401 - registers the roles' rights
        from personalization.decisions import decide, exposures_before
        from personalization.services.approvals import register_decider
        from personalization.services.optimizer import proposal_decide
        from personalization.services.scarcity.cues import cues_before

        hooks.register_decision_engine(decide)
        hooks.add_attribution_source(exposures_before, name="personalization.exposures")
        hooks.add_attribution_source(cues_before, name="personalization.cues")
        register_decider("optimizationproposal", proposal_decide)
