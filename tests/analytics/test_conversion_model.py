"""The conversion model: encoding, fit, scoring, metrics, training task, activation, serving.

Training data in the task tests is made through the real services (session start,
conversions, the idle closer). Every session starts at the same hour, from google,
without intent signals, so the only feature that varies is the device (and the
persona the rules derive from it): desktop sessions convert 3 times in 4, mobile
ones once in 4. The best predictor of such data is the held-out sessions' own
conversion rate per device, which the tests can compute and store as a model.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone
from scipy.stats import mannwhitneyu

from analytics.conversion_training import NAMESPACE, conversion_model_train, training_data
from analytics.models import ConversionModel
from analytics.tasks import train_conversion_models_task
from core import conversion_model
from core.config_cache import VersionedCache, current_version
from core.conversion_model import Metrics, auc, brier, encode, encoding_fit, score, snapshot_features, train
from journeys.models import JourneySession
from journeys.services.conversions import conversion_record
from journeys.services.sessions import SessionStart, session_start, sessions_close_idle
from tests.journeys.helpers import move, start

MONDAY_MIDNIGHT = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
DEVICES = ["desktop", "mobile"]


def features(**overrides) -> dict:
    values = {
        "device": "mobile",
        "source": "google",
        "path": "standard_conversion_funnel",
        "stage": "awareness",
        "engagement": None,
        "purchase_intent": None,
        "persona": "General",
        "persona_confidence": 0.3,
        "returning": False,
        "started_at": MONDAY_MIDNIGHT,
    }
    return snapshot_features(**{**values, **overrides})


# --- encoding -----------------------------------------------------------------------


def test_encoding_pools_rare_levels_and_standardizes_numbers_with_training_statistics():
    rows = [features(source="google", engagement=0.25, persona_confidence=0.5)] * 10
    rows += [features(source="google", engagement=0.75, persona_confidence=0.5)] * 10
    rows += [features(source="bing", engagement=None, persona_confidence=0.5)]

    encoding = encoding_fit(rows)

    assert encoding["categorical"] == [
        {"name": "device", "levels": ["desktop", "mobile", "tablet", "__other__"]},
        {"name": "path", "levels": [*conversion_model.PATHS, "__other__"]},
        {"name": "stage", "levels": ["awareness", "consideration", "decision", "__other__"]},
        {"name": "weekday", "levels": ["0", "1", "2", "3", "4", "5", "6", "__other__"]},
        {"name": "source", "levels": ["google", "__other__"]},  # bing: 1 row < 20
        {"name": "persona", "levels": ["General", "__other__"]},
    ]
    assert encoding["numeric"] == [
        {"name": "engagement", "mean": 0.5, "scale": 0.25},
        {"name": "purchase_intent", "mean": 0.0, "scale": 1.0},  # never sent
        {"name": "persona_confidence", "mean": 0.5, "scale": 1.0},  # constant
    ]


def test_a_row_encodes_to_one_hot_levels_standardized_numbers_and_cyclic_hour():
    encoding = {
        "categorical": [
            {"name": "device", "levels": ["desktop", "mobile", "__other__"]},
            {"name": "source", "levels": ["google", "__other__"]},
        ],
        "numeric": [{"name": "engagement", "mean": 0.5, "scale": 0.25}],
    }
    row = features(device="mobile", source="bing", engagement=0.75, returning=True, started_at=MONDAY_MIDNIGHT)

    assert conversion_model.columns(encoding) == [
        "device=desktop",
        "device=mobile",
        "device=__other__",
        "source=google",
        "source=__other__",
        "engagement",
        "engagement:missing",
        "returning",
        "hour_sin",
        "hour_cos",
    ]
    assert encode(encoding, row) == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert encode(encoding, {**row, "engagement": None, "device": "watch"})[:7] == [0, 0, 1, 0, 1, 0, 1]


def test_snapshot_features_take_weekday_and_hour_of_the_start_in_utc():
    row = features(started_at=datetime(2026, 1, 11, 23, 30, tzinfo=UTC))  # a Sunday

    assert (row["weekday"], row["hour"]) == ("6", 23)


# --- fit and score ------------------------------------------------------------------


def test_unpenalized_fit_reproduces_each_groups_conversion_rate():
    # desktop: 3 of 4 convert; mobile: 1 of 4; everything else is the same.
    rows = [features(device="desktop")] * 4 + [features(device="mobile")] * 4
    labels = [1, 1, 1, 0, 1, 0, 0, 0]

    model = train(rows, labels, l2=0.0)

    assert score(model, features(device="desktop")) == pytest.approx(0.75, abs=1e-9)
    assert score(model, features(device="mobile")) == pytest.approx(0.25, abs=1e-9)


def test_penalized_fit_is_where_the_penalized_gradient_vanishes():
    rng = random.Random(3)
    rows = [
        features(
            device=rng.choice(["desktop", "mobile"]), engagement=round(rng.random(), 3), returning=rng.random() < 0.3
        )
        for _ in range(200)
    ]
    labels = [int(rng.random() < (0.6 if row["device"] == "desktop" else 0.2)) for row in rows]

    model = train(rows, labels, l2=1.0)

    x = np.array([encode(model["encoding"], row) for row in rows])
    weights = np.array(model["weights"])
    p = 1 / (1 + np.exp(-(model["intercept"] + x @ weights)))
    assert abs(float(np.sum(p - labels))) < 1e-8  # the intercept is not penalized
    assert np.max(np.abs(x.T @ (p - np.array(labels)) + 1.0 * weights)) < 1e-8


def test_score_is_the_logistic_of_intercept_plus_weighted_columns():
    model = {
        "encoding": {
            "categorical": [{"name": "device", "levels": ["desktop", "mobile", "__other__"]}],
            "numeric": [{"name": "engagement", "mean": 0.5, "scale": 0.25}],
        },
        "intercept": -1.0,
        "weights": [0.0, 2.0, 0.0, 0.5, -3.0, 0.4, 0.0, 0.0],
    }

    # z = -1 + 2 (mobile) + 0.5 * (0.75 - 0.5) / 0.25 + 0.4 (returning) = 1.9
    assert score(model, features(device="mobile", engagement=0.75, returning=True)) == pytest.approx(
        1 / (1 + math.exp(-1.9)), abs=1e-15
    )
    # z = -1 + 0 (desktop) - 3 (engagement missing) = -4
    assert score(model, features(device="desktop")) == pytest.approx(1 / (1 + math.exp(4.0)), abs=1e-15)


def test_training_is_deterministic_and_stores_plain_json():
    rows = [features(device=d) for d in ["desktop", "mobile"] * 30]
    labels = [i % 3 == 0 for i in range(60)]

    first, second = train(rows, labels), train(rows, labels)

    assert first == second
    assert {type(value) for value in first["weights"]} == {float}
    assert first["columns"] == conversion_model.columns(first["encoding"])


# --- metrics ------------------------------------------------------------------------


def test_auc_by_hand_counts_ties_as_one_half():
    # pairs (positive, negative): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, *) two wins -> 3 / 4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875  # (0.5, 0.5) is a tie: 0.5 + 1 + 1 + 1 over 4


def test_auc_equals_mann_whitney_u_over_the_pairs():
    rng = random.Random(11)
    y = [int(rng.random() < 0.3) for _ in range(500)]
    p = [round(rng.random() * 0.5 + 0.3 * label, 2) for label in y]  # rounding makes many ties
    positives = [pi for pi, yi in zip(p, y, strict=True) if yi]
    negatives = [pi for pi, yi in zip(p, y, strict=True) if not yi]

    u = mannwhitneyu(positives, negatives, alternative="two-sided").statistic

    assert auc(y, p) == pytest.approx(u / (len(positives) * len(negatives)), abs=1e-12)


def test_auc_refuses_a_single_class():
    with pytest.raises(ValueError):
        auc([1, 1], [0.2, 0.3])


def test_brier_is_the_mean_squared_error():
    assert brier([1, 0], [0.75, 0.25]) == 0.0625
    assert brier([1, 0, 1, 1], [1.0, 0.0, 0.5, 0.0]) == 0.3125


def test_activation_rule_needs_lower_brier_and_an_auc_at_most_0_01_lower():
    active = Metrics(auc=0.70, brier=0.100)

    assert Metrics(auc=0.70, brier=0.099).beats(active)
    assert Metrics(auc=0.75, brier=0.099).beats(active)
    assert Metrics(auc=0.695, brier=0.099).beats(active)  # within the AUC tolerance
    assert not Metrics(auc=0.70, brier=0.100).beats(active)  # the same: no change
    assert not Metrics(auc=0.68, brier=0.090).beats(active)  # better calibrated, ranks clearly worse
    assert not Metrics(auc=0.90, brier=0.101).beats(active)


# --- training task ------------------------------------------------------------------


def visit(site, number: int, *, device: str, converts: bool, started_at: datetime) -> JourneySession:
    """A session through the real services: start, and a purchase if it converts."""
    session = session_start(
        site=site,
        data=SessionStart(
            session_id=f"s-{number}",
            visitor_id=f"v-{number}",
            device_type=device,
            entry_point={"source": "google"},
            raw={"session_id": f"s-{number}", "device": device},
        ),
        now=started_at,
    ).session
    if converts:
        conversion_record(
            session=session,
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"test-purchase-{number}"),
            type="purchase",
            value=Decimal("20.00"),
            currency="EUR",
            product={},
            funnel_step="checkout",
            raw={"n": number},
        )
    return session


def history(site, *, sessions: int, first: int = 0) -> None:
    """Finished sessions: desktop converts 3 times in 4, mobile once in 4 (module docstring)."""
    started_at = timezone.now().replace(minute=0, second=0, microsecond=0)
    for number in range(first, first + sessions):
        desktop = number % 2 == 0
        k = number // 2
        converts = k % 4 != 3 if desktop else k % 4 == 3
        visit(site, number, device="desktop" if desktop else "mobile", converts=converts, started_at=started_at)
    sessions_close_idle(now=timezone.now() + timedelta(days=1), idle_minutes=30)


def device_model(rates: dict[str, float]) -> dict:
    """Coefficients that give exactly ``rates[device]`` and ignore everything else."""
    devices = ["desktop", "mobile", "tablet", "__other__"]
    return {
        "encoding": {"categorical": [{"name": "device", "levels": devices}], "numeric": []},
        "intercept": 0.0,
        "weights": [math.log(rates[d] / (1 - rates[d])) if d in rates else 0.0 for d in devices] + [0.0, 0.0, 0.0],
    }


def held_out_rates(site) -> dict[str, float]:
    rows = [row for row in training_data(site_id=site.pk, now=timezone.now()).rows if row.holdout]
    rates = {}
    for device in ("desktop", "mobile"):
        labels = [row.label for row in rows if row.features["device"] == device]
        rates[device] = sum(labels) / len(labels)
    return rates


def stored_model(site, version: int, coefficients: dict, *, active: bool) -> ConversionModel:
    now = timezone.now()
    return ConversionModel.objects.create(
        site=site,
        version=version,
        coefficients=coefficients,
        training_size=0,
        holdout_size=0,
        auc=0.5,
        brier=0.25,
        is_active=active,
        trained_from=now,
        trained_to=now,
    )


@pytest.mark.django_db
def test_first_model_is_trained_stored_and_activated_over_the_priors(site, django_capture_on_commit_callbacks):
    history(site, sessions=300)

    with django_capture_on_commit_callbacks(execute=True):
        stored = train_conversion_models_task.delay().get()

    model = ConversionModel.objects.get(site=site)
    data = training_data(site_id=site.pk, now=timezone.now())
    held_out = [row for row in data.rows if row.holdout]
    assert stored == 1
    assert (model.version, model.is_active) == (1, True)
    assert (model.training_size, model.holdout_size) == (data.training_sessions, data.holdout_sessions)
    assert model.training_size + model.holdout_size == 300
    assert model.coefficients["baseline"] == {"kind": "priors"}
    assert model.coefficients["holdout_rows"] == len(held_out) == model.holdout_size  # one start row each
    # The priors give every session the same 0.15: AUC one half.
    assert model.baseline_auc == 0.5
    labels = [row.label for row in held_out]
    assert model.baseline_brier == pytest.approx(brier(labels, [0.15] * len(labels)), abs=1e-12)
    assert model.auc == pytest.approx(auc(labels, [row.features["device"] == "desktop" for row in held_out]))
    assert model.brier < model.baseline_brier
    desktop = next(row.features for row in held_out if row.features["device"] == "desktop")
    mobile = next(row.features for row in held_out if row.features["device"] == "mobile")
    assert score(model.coefficients, desktop) > 0.6 > 0.4 > score(model.coefficients, mobile)
    assert current_version(NAMESPACE) == 1  # serving caches reload once it committed


@pytest.mark.django_db
def test_a_second_run_on_the_same_data_stores_nothing(site, django_capture_on_commit_callbacks):
    history(site, sessions=300)
    with django_capture_on_commit_callbacks(execute=True):
        first = conversion_model_train(site_id=site.pk)

    with django_capture_on_commit_callbacks(execute=True):
        second = conversion_model_train(site_id=site.pk)

    assert (first.status, first.version) == ("activated", 1)
    assert (second.status, second.reason) == ("skipped", "same training data as version 1")
    assert list(ConversionModel.objects.values_list("version", "is_active")) == [(1, True)]
    assert current_version(NAMESPACE) == 1


@pytest.mark.django_db
def test_new_finished_sessions_give_a_new_version(site):
    history(site, sessions=300)
    conversion_model_train(site_id=site.pk)
    history(site, sessions=40, first=300)

    outcome = conversion_model_train(site_id=site.pk)

    assert outcome.version == 2
    assert outcome.status in {"activated", "stored"}
    assert ConversionModel.objects.filter(site=site).count() == 2
    assert ConversionModel.objects.filter(site=site, is_active=True).count() == 1


@pytest.mark.django_db
def test_a_model_worse_than_the_active_one_is_stored_but_not_activated(site, django_capture_on_commit_callbacks):
    history(site, sessions=300)
    # The active model predicts exactly the held-out sessions' rate per device: no
    # predictor of these features has a lower Brier score on them.
    best = stored_model(site, 1, device_model(held_out_rates(site)), active=True)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = conversion_model_train(site_id=site.pk)

    new = ConversionModel.objects.get(site=site, version=2)
    assert (outcome.status, new.is_active) == ("stored", False)
    assert ConversionModel.objects.get(pk=best.pk).is_active is True
    assert new.coefficients["baseline"] == {"kind": "model", "version": 1}
    assert new.baseline_auc == new.auc  # both rank desktop above mobile, nothing else
    assert new.brier > new.baseline_brier
    assert current_version(NAMESPACE) == 0  # nothing to reload


@pytest.mark.django_db
def test_a_better_model_replaces_the_active_one(site, django_capture_on_commit_callbacks):
    history(site, sessions=300)
    stored_model(site, 1, device_model({"desktop": 0.5, "mobile": 0.5}), active=True)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = conversion_model_train(site_id=site.pk)

    assert outcome.status == "activated"
    assert list(ConversionModel.objects.order_by("version").values_list("version", "is_active")) == [
        (1, False),
        (2, True),
    ]
    new = ConversionModel.objects.get(version=2)
    assert (new.baseline_auc, new.baseline_brier) == (0.5, 0.25)
    assert current_version(NAMESPACE) == 1


@pytest.mark.django_db
def test_too_little_history_is_skipped_with_its_reason(site, django_capture_on_commit_callbacks):
    history(site, sessions=60)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = conversion_model_train(site_id=site.pk)

    data = training_data(site_id=site.pk, now=timezone.now())
    assert outcome.status == "skipped"
    assert outcome.reason == (
        f"{data.training_sessions} training sessions with {data.training_positives} conversions; needs 200 with 20"
    )
    assert ConversionModel.objects.count() == 0


@pytest.mark.django_db
def test_open_sessions_are_not_training_data(site):
    history(site, sessions=4)
    visit(site, 99, device="desktop", converts=False, started_at=timezone.now())

    data = training_data(site_id=site.pk, now=timezone.now())

    assert sorted(row.session_id for row in data.rows) == ["s-0", "s-1", "s-2", "s-3"]


# --- serving ------------------------------------------------------------------------


@pytest.mark.django_db
def test_session_start_and_stage_updates_use_the_active_model(site, api, django_capture_on_commit_callbacks):
    history(site, sessions=300)
    with django_capture_on_commit_callbacks(execute=True):
        conversion_model_train(site_id=site.pk)
    coefficients = ConversionModel.objects.get(site=site, is_active=True).coefficients
    VersionedCache.clear_all()  # the version was bumped; skip the check interval

    started = start(api, "new-1", device="desktop", source="google", intent_signals={"purchase_intent": 0.8})
    session = JourneySession.objects.get(site=site, session_id="new-1")
    at_start = snapshot_features(
        device="desktop",
        source="google",
        path=session.journey_path,
        stage="awareness",
        engagement=None,
        purchase_intent=0.8,
        persona=session.persona_type,
        persona_confidence=session.persona_confidence,
        returning=False,
        started_at=session.started_at,
    )
    expected_start = round(min(0.9, max(0.1, score(coefficients, at_start))), 4)
    moved = move(api, "new-1", "consideration", engagement={"engagement_score": 0.7})
    expected_update = round(
        min(0.99, max(0.01, score(coefficients, {**at_start, "stage": "consideration", "engagement": 0.7}))), 4
    )

    assert started.status_code == 201
    assert started.json()["journey_state"]["conversion_probability"] == expected_start
    assert session.conversion_probability == expected_start
    assert expected_start != 0.24  # the prior: 0.15 + 0.30 * (0.8 - 0.5)
    assert moved.json()["journey_state"]["conversion_probability"] == expected_update
    assert JourneySession.objects.get(pk=session.pk).conversion_probability == expected_update


@pytest.mark.django_db
def test_start_value_of_the_model_is_clamped_to_0_1_and_0_9(site, api):
    stored_model(site, 1, device_model({"desktop": 0.97, "mobile": 0.02}), active=True)

    high = start(api, "s-high", device="desktop")
    low = start(api, "s-low", device="mobile")

    assert high.json()["journey_state"]["conversion_probability"] == 0.9
    assert low.json()["journey_state"]["conversion_probability"] == 0.1


@pytest.mark.django_db
def test_without_a_model_session_start_uses_the_priors(site, api):
    response = start(api, "s-1", device="desktop", intent_signals={"purchase_intent": 0.8})

    assert ConversionModel.objects.count() == 0
    assert response.json()["journey_state"]["conversion_probability"] == 0.24  # 0.15 + 0.30 * (0.8 - 0.5)


@pytest.mark.django_db
def test_a_converted_session_keeps_the_prior_of_its_stage(site, api):
    stored_model(site, 1, device_model({"desktop": 0.5, "mobile": 0.5}), active=True)
    start(api, "s-1", device="desktop")

    moved = move(api, "s-1", "retention")

    assert moved.json()["journey_state"]["conversion_probability"] == 0.6  # retention prior


@pytest.mark.django_db
def test_stored_coefficients_score_like_the_trained_ones(site):
    # jsonb reorders object keys: the column order must not depend on them.
    rng = random.Random(5)
    rows = [
        features(device=rng.choice(DEVICES), source=rng.choice(["google", "email"]), engagement=rng.random())
        for _ in range(100)
    ]
    trained = train(rows, [int(rng.random() < 0.4) for _ in rows])

    stored = ConversionModel.objects.get(pk=stored_model(site, 1, trained, active=False).pk).coefficients

    assert [score(stored, row) for row in rows] == [score(trained, row) for row in rows]
