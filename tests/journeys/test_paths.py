import pytest

from journeys.models import JourneySession, StageTransition
from tests.journeys.helpers import start


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("device", "source", "returning", "path"),
    [
        ("mobile", "tiktok", False, "mobile_tiktok_fast_track"),
        ("mobile", "instagram", True, "mobile_tiktok_fast_track"),
        ("mobile", "youtube_shorts", False, "mobile_tiktok_fast_track"),
        ("desktop", "google", False, "desktop_research_deep"),
        ("desktop", "direct", True, "desktop_research_deep"),
        ("desktop", "referral", False, "desktop_research_deep"),
        ("tablet", "google", True, "returning_visitor_personalized"),
        ("mobile", "google", True, "returning_visitor_personalized"),
        ("tablet", "tiktok", False, "standard_conversion_funnel"),
        ("desktop", "tiktok", False, "standard_conversion_funnel"),
    ],
)
def test_default_path_rules_choose_the_documented_path(api, device, source, returning, path):
    response = start(api, "s-1", device=device, source=source, returning=returning)

    assert response.status_code == 201, response.json()
    assert response.json()["journey_state"]["journey_path"] == path
    session = JourneySession.objects.get(session_id="s-1")
    assert session.journey_path == path
    assert list(StageTransition.objects.filter(session=session).values_list("from_stage", "to_stage")) == [
        ("", "awareness")
    ]
