from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Personalization"

    def ready(self) -> None:
        from journeys.decisions import register_engine
        from journeys.services.conversions import ATTRIBUTION_SOURCES
        from personalization import roles  # noqa: F401 - registers the roles' rights
        from personalization.decisions import decide, exposures_before
        from personalization.services.scarcity.cues import cues_before

        register_engine(decide)
        for source in (exposures_before, cues_before):
            if source not in ATTRIBUTION_SOURCES:
                ATTRIBUTION_SOURCES.append(source)
