from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        """Fill the slots of :mod:`core.hooks` that the layers below leave to analytics."""
        from analytics import monitor
        from analytics.arm_metrics import guardrails_worse
        from analytics.conversion_training import PROBABILITY_PROVIDER
        from analytics.rollups import SELF_MARKING_CTE
        from core import hooks

        for kind, listener in {
            "session_started": monitor.session_started_published,
            "stage_changed": monitor.stage_changed_published,
            "conversion": monitor.conversion_published,
            "cues_shown": monitor.cues_shown_published,
            "proposals_created": monitor.proposals_created_published,
            "proposal_decided": monitor.proposal_decided_published,
            "approval_decided": monitor.approval_decided_published,
        }.items():
            hooks.on_feed(kind, listener, name="analytics.monitor")
        hooks.register_probability_provider(PROBABILITY_PROVIDER)
        hooks.register_rollup_mark_cte(SELF_MARKING_CTE)
        hooks.register_guardrail_check(guardrails_worse)
