"""The verdict at the top of each experiment: exact sentences for each case."""

import pytest

from analytics.verdicts import ArmReading, Change, about, experiment_verdict, percent

LIFT = Change("conversion rate", 0.12, 0.04, 0.20)
BOUNCE = Change("bounce rate", 0.35, 0.10, 0.60)


def arm(key="hero-b", exposures=5000, primary=LIFT, **fields) -> ArmReading:
    return ArmReading(key=key, exposures=exposures, primary=primary, **fields)


def text(**kwargs) -> str:
    return experiment_verdict(**{"srm_flagged": False, **kwargs}).text


def test_a_treatment_that_beats_the_control_is_the_winner_with_its_lift_and_interval():
    assert text(treatments=[arm(better=True)]) == "winner: hero-b (conversion rate +12%, 95% interval +4.0% to +20%)"


def test_the_best_of_several_winners_is_named():
    small = arm("hero-b", primary=Change("conversion rate", 0.05, 0.01, 0.09), better=True)
    large = arm("hero-c", better=True)
    assert experiment_verdict(treatments=[small, large], srm_flagged=False).variant == "hero-c"


def test_a_sample_ratio_mismatch_overrides_everything():
    verdict = experiment_verdict(treatments=[arm(better=True)], srm_flagged=True, declared_winner="hero-b")
    assert (verdict.kind, verdict.text) == ("srm", "stopped: sample ratio mismatch")


def test_a_winner_worse_on_a_guardrail_is_reported_as_the_guardrail():
    verdict = experiment_verdict(treatments=[arm(better=True, guardrails_worse=[BOUNCE])], srm_flagged=False)
    assert (verdict.kind, verdict.text) == (
        "guardrail",
        "guardrail bounce rate worse for hero-b (bounce rate +35%, 95% interval +10% to +60%)",
    )


def test_several_worse_guardrails_are_listed():
    ttc = Change("time to convert", 0.5, 0.1, 0.9)
    refunds = Change("refund or cancellation rate", 1.0, 0.2, 1.8)
    assert (
        text(treatments=[arm(guardrails_worse=[BOUNCE, refunds, ttc])])
        == "guardrails bounce rate, refund or cancellation rate and time to convert worse for hero-b"
    )


def test_a_guardrail_of_another_arm_shows_when_nothing_wins():
    assert text(treatments=[arm("hero-b"), arm("hero-c", guardrails_worse=[BOUNCE])]).startswith(
        "guardrail bounce rate worse for hero-c"
    )


def test_a_treatment_worse_than_control_means_no_winner():
    loser = arm(primary=Change("conversion rate", -0.2, -0.3, -0.1), worse=True)
    assert (
        text(treatments=[loser])
        == "no winner: hero-b worse than control (conversion rate -20%, 95% interval -30% to -10%)"
    )


def test_no_difference_yet_says_how_many_more_visitors_each_arm_needs():
    assert (
        text(treatments=[arm()], more_per_arm=1234) == "no difference detected yet: about 1,300 more visitors per arm"
    )
    assert text(treatments=[arm()], more_per_arm=87) == "no difference detected yet: about 87 more visitors per arm"


def test_no_difference_at_the_planned_sample():
    assert (
        text(treatments=[arm()], more_per_arm=0, planned_per_arm=31_234)
        == "no difference detected at the planned sample (32,000 visitors per arm)"
    )


def test_without_control_conversions_the_test_cannot_be_sized():
    assert (
        text(treatments=[arm()], more_per_arm=None)
        == "no difference detected yet: not enough data to size the test (no control conversions)"
    )


def test_a_declared_winner_is_named_with_its_figures():
    assert (
        text(treatments=[arm()], declared_winner="hero-b")
        == "winner: hero-b (conversion rate +12%, 95% interval +4.0% to +20%)"
    )


def test_no_exposures_means_no_data_and_an_ended_experiment_says_so():
    assert text(treatments=[arm(exposures=0)]) == "no data yet: no visitor has seen a treatment"
    assert text(treatments=[arm()], status="archived") == "ended: no difference detected"
    assert text(treatments=[arm()], status="paused") == "paused: no difference detected"


@pytest.mark.parametrize(
    ("value", "shown"), [(0.12, "+12%"), (0.045, "+4.5%"), (-0.008, "-0.8%"), (0.0996, "+10%"), (-1.0, "-100%")]
)
def test_percent_is_signed_with_one_decimal_under_ten(value, shown):
    assert percent(value) == shown


@pytest.mark.parametrize(("count", "shown"), [(0, "0"), (99, "99"), (100, "100"), (101, "110"), (12_001, "13,000")])
def test_about_rounds_up_to_two_significant_digits(count, shown):
    assert about(count) == shown
