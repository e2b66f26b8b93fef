"""Training, activating and serving each site's conversion model (PRODUCT.md section 3).

The mathematics and the choice of rows, features and label are documented in
:mod:`core.conversion_model`. This module reads the site's finished sessions,
trains, measures on held-out sessions, stores the model and activates it when it wins;
and it keeps the active models cached in every process for session start and stage
updates.

Held-out sessions: a session is held out when the hash of ``(site id, session id)``
falls in :data:`HOLDOUT_PERCENT` of 100 buckets, so the same session is always on the
same side, in every run and every process.

Activation rule (:meth:`core.conversion_model.Metrics.beats`): the new model is
activated when, on the same held-out rows, its Brier score is strictly lower than the
baseline's and its AUC is at most 0.01 lower. The baseline is the active model, or the
documented priors while there is none; ``baseline_auc``/``baseline_brier`` record it
and ``coefficients["baseline"]`` says which it was. A model that does not win is
stored, inactive, for the record.

Idempotency: ``coefficients["data_digest"]`` fingerprints the training data (the
sessions, their labels and their rows, and the training parameters). A run whose
digest equals that of the site's latest stored model stores nothing: the same state
gives no new version. Concurrent runs for one site serialize on a PostgreSQL advisory
lock; the loser skips.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from analytics.models import ConversionModel
from core import conversion_model
from core.config_cache import VersionedCache, bump
from core.conversion_model import Metrics
from journeys import intelligence
from journeys.models import ConversionEvent, JourneySession, Site, StageTransition
from journeys.selectors import human_sessions

logger = logging.getLogger(__name__)

NAMESPACE = "conversion-models"
TRAINING_WINDOW_DAYS = 90
MAX_TRAINING_SESSIONS = 100_000  # the most recent finished sessions of the window
MIN_TRAINING_SESSIONS = 200
MIN_TRAINING_POSITIVES = 20  # converted sessions among the training sessions
HOLDOUT_PERCENT = 20
_LOCK_CLASS = 0x434D  # advisory-lock namespace of this module ("CM")


# --- serving ------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveModel:
    version: int
    coefficients: Mapping


def _load_active() -> dict[int, ActiveModel]:
    return {
        site_id: ActiveModel(version, coefficients)
        for site_id, version, coefficients in ConversionModel.objects.filter(is_active=True).values_list(
            "site_id", "version", "coefficients"
        )
    }


_active = VersionedCache(NAMESPACE, _load_active)


def active_conversion_model(site_id: int) -> ActiveModel | None:
    """The site's active model, from the process cache (one Redis GET per check interval)."""
    return _active.get().get(site_id)


# --- training data ------------------------------------------------------------------


def is_holdout(site_id: int, session_id: str) -> bool:
    digest = hashlib.blake2b(f"{site_id}:{session_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100 < HOLDOUT_PERCENT


@dataclass
class Row:
    """One scoring moment of a finished session, and what the prior needs to score it."""

    session_id: str
    features: dict
    label: int
    holdout: bool
    start: bool
    intent: Mapping
    update_engagement: float | None


@dataclass
class TrainingData:
    rows: list[Row] = field(default_factory=list)
    training_sessions: int = 0
    training_positives: int = 0
    holdout_sessions: int = 0
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    digest: str = ""


def training_data(*, site_id: int, now: datetime) -> TrainingData:
    """The snapshot rows of the site's finished sessions in the training window.

    A session is finished when it has ended (closed by the client's flow or by the
    idle closer). Its label is whether it has a conversion of a type in
    ``settings.CONVERSION_STAGE_TYPES``; snapshots taken once it had converted, and
    snapshots in a stage other than the open ones, are not rows.
    """
    first_conversion = (
        ConversionEvent.objects.filter(session=OuterRef("pk"), type__in=settings.CONVERSION_STAGE_TYPES)
        .order_by("converted_at")
        .values("converted_at")[:1]
    )
    cutoff = now - timedelta(days=TRAINING_WINDOW_DAYS)
    # A crawler's or a flood's sessions never convert: they would teach the model that nobody does.
    sessions = {
        values["pk"]: values
        for values in JourneySession.objects.filter(
            human_sessions("pk"), site_id=site_id, ended_at__isnull=False, started_at__gte=cutoff
        )
        .annotate(converted_at=Subquery(first_conversion))
        .order_by("-started_at", "-pk")
        .values(
            "pk",
            "session_id",
            "device_type",
            "source",
            "journey_path",
            "persona_type",
            "persona_confidence",
            "returning",
            "started_at",
            "intent_signals",
            "converted_at",
        )[:MAX_TRAINING_SESSIONS]
    }
    data = TrainingData()
    if not sessions:
        return data
    data.trained_from = min(s["started_at"] for s in sessions.values())
    data.trained_to = max(s["started_at"] for s in sessions.values())
    transitions = (
        StageTransition.objects.filter(
            session__site_id=site_id, session__ended_at__isnull=False, session__started_at__gte=data.trained_from
        )
        .order_by("session_id", "created_at", "id")
        .values_list("session_id", "id", "from_stage", "trigger_event", "to_stage", "engagement", "created_at")
    )
    fingerprint = hashlib.sha256(
        f"{conversion_model.FORMAT}:{conversion_model.DEFAULT_L2}:{conversion_model.MIN_LEVEL_ROWS}:"
        f"{HOLDOUT_PERCENT}:{sorted(settings.CONVERSION_STAGE_TYPES)}".encode()
    )
    merged_engagement: dict[int, dict] = {}
    with_rows: set[int] = set()
    for session_pk, transition_id, from_stage, trigger, stage, engagement, created_at in transitions:
        session = sessions.get(session_pk)
        if session is None:
            continue
        merged = merged_engagement.setdefault(session_pk, {})
        merged.update(engagement or {})
        if stage not in conversion_model.OPEN_STAGES:
            continue
        if session["converted_at"] is not None and created_at >= session["converted_at"]:
            continue
        intent = session["intent_signals"] or {}
        row = Row(
            session_id=session["session_id"],
            features=conversion_model.snapshot_features(
                device=session["device_type"],
                source=session["source"],
                path=session["journey_path"],
                stage=stage,
                engagement=merged.get("engagement_score"),
                purchase_intent=intent.get("purchase_intent"),
                persona=session["persona_type"],
                persona_confidence=session["persona_confidence"],
                returning=session["returning"],
                started_at=session["started_at"],
            ),
            label=int(session["converted_at"] is not None),
            holdout=is_holdout(site_id, session["session_id"]),
            start=from_stage == "" and trigger == "session_start",
            intent=intent,
            update_engagement=(engagement or {}).get("engagement_score"),
        )
        data.rows.append(row)
        with_rows.add(session_pk)
        fingerprint.update(f"{session_pk}:{transition_id}:{row.label};".encode())
    for pk in with_rows:
        session = sessions[pk]
        if is_holdout(site_id, session["session_id"]):
            data.holdout_sessions += 1
        else:
            data.training_sessions += 1
            data.training_positives += int(session["converted_at"] is not None)
    data.digest = fingerprint.hexdigest()
    return data


# --- training -----------------------------------------------------------------------


def served_probability(coefficients: Mapping | None, row: Row) -> float:
    """What session start or a stage update would have served for ``row`` with this model
    (or with the priors, for ``None``): the same function, clamps and rounding."""
    return intelligence.conversion_probability(
        model=coefficients,
        features=row.features,
        intent=row.intent,
        returning=row.features["returning"],
        engagement_score=row.update_engagement,
        start=row.start,
    )


@dataclass(frozen=True)
class TrainOutcome:
    site_id: int
    status: str  # "activated", "stored" (not better than the baseline) or "skipped"
    reason: str = ""
    version: int | None = None
    metrics: Metrics | None = None
    baseline: Metrics | None = None


def _skip(site_id: int, reason: str) -> TrainOutcome:
    logger.info("conversion model of site %s not trained: %s", site_id, reason)
    return TrainOutcome(site_id, "skipped", reason)


def conversion_model_train(*, site_id: int, now: datetime | None = None) -> TrainOutcome:
    """Train a model of the site on its finished sessions; store it; activate it if it wins.

    One transaction under a per-site advisory lock: a concurrent run for the same site
    skips. Skips, storing nothing, with fewer than :data:`MIN_TRAINING_SESSIONS`
    training sessions or :data:`MIN_TRAINING_POSITIVES` converted ones, when the
    held-out rows lack either outcome, or when the training data is the same as the
    latest stored model's. Activation swaps ``is_active`` in the same transaction
    (the old one off first, for the one-active-per-site constraint) and invalidates
    the serving cache once it commits.
    """
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, site_id])
            if not cursor.fetchone()[0]:
                return _skip(site_id, "another run is training this site")
        data = training_data(site_id=site_id, now=now)
        if data.training_sessions < MIN_TRAINING_SESSIONS or data.training_positives < MIN_TRAINING_POSITIVES:
            return _skip(
                site_id,
                f"{data.training_sessions} training sessions with {data.training_positives} conversions; "
                f"needs {MIN_TRAINING_SESSIONS} with {MIN_TRAINING_POSITIVES}",
            )
        latest = ConversionModel.objects.filter(site_id=site_id).order_by("-version").first()
        if latest is not None and latest.coefficients.get("data_digest") == data.digest:
            return _skip(site_id, f"same training data as version {latest.version}")
        training = [row for row in data.rows if not row.holdout]
        held_out = [row for row in data.rows if row.holdout]
        labels = [row.label for row in held_out]
        if len(set(labels)) < 2:
            return _skip(site_id, f"the {len(held_out)} held-out rows need both outcomes")

        coefficients = conversion_model.train([row.features for row in training], [row.label for row in training])
        active = ConversionModel.objects.filter(site_id=site_id, is_active=True).first()
        measured = conversion_model.metrics(labels, [served_probability(coefficients, row) for row in held_out])
        baseline = conversion_model.metrics(
            labels, [served_probability(active.coefficients if active else None, row) for row in held_out]
        )
        activate = measured.beats(baseline)
        coefficients.update(
            data_digest=data.digest,
            baseline={"kind": "model", "version": active.version} if active else {"kind": "priors"},
            training_rows=len(training),
            holdout_rows=len(held_out),
            training_positives=data.training_positives,
        )
        version = (ConversionModel.objects.filter(site_id=site_id).aggregate(v=Max("version"))["v"] or 0) + 1
        if activate and active is not None:
            ConversionModel.objects.filter(pk=active.pk).update(is_active=False)
        ConversionModel.objects.create(
            site_id=site_id,
            version=version,
            coefficients=coefficients,
            training_size=data.training_sessions,
            holdout_size=data.holdout_sessions,
            auc=measured.auc,
            brier=measured.brier,
            baseline_auc=baseline.auc,
            baseline_brier=baseline.brier,
            is_active=activate,
            trained_from=data.trained_from,
            trained_to=data.trained_to,
        )
        if activate:
            bump(NAMESPACE)
    logger.info(
        "conversion model v%s of site %s: AUC %.4f Brier %.4f vs baseline AUC %.4f Brier %.4f -> %s",
        version,
        site_id,
        measured.auc,
        measured.brier,
        baseline.auc,
        baseline.brier,
        "activated" if activate else "stored, not active",
    )
    return TrainOutcome(site_id, "activated" if activate else "stored", "", version, measured, baseline)


def conversion_models_train(*, site_id: int | None = None, now: datetime | None = None) -> list[TrainOutcome]:
    """Train every active site (or one); each site in its own transaction."""
    sites = Site.objects.filter(is_active=True).order_by("pk")
    if site_id is not None:
        sites = sites.filter(pk=site_id)
    return [conversion_model_train(site_id=pk, now=now) for pk in sites.values_list("pk", flat=True)]


# --- scoring at session start and stage updates ---------------------------------------


def _served(site_id: int, features: dict, *, intent: Mapping, engagement_score: float | None, start: bool) -> float:
    active = active_conversion_model(site_id)
    return intelligence.conversion_probability(
        model=active.coefficients if active else None,
        features=features,
        intent=intent,
        returning=features["returning"],
        engagement_score=engagement_score,
        start=start,
    )


def session_start_probability(
    *,
    site_id: int,
    device: str,
    source: str,
    path: str,
    persona: str,
    persona_confidence: float | None,
    returning: bool,
    intent: Mapping,
    started_at: datetime,
) -> float:
    """The start-of-session probability: the active model's, clamped to [0.1, 0.9], or the prior."""
    features = conversion_model.snapshot_features(
        device=device,
        source=source,
        path=path,
        stage="awareness",
        engagement=None,
        purchase_intent=intent.get("purchase_intent"),
        persona=persona,
        persona_confidence=persona_confidence,
        returning=returning,
        started_at=started_at,
    )
    return _served(site_id, features, intent=intent, engagement_score=None, start=True)


def stage_update_probability(*, session: JourneySession, stage: str, engagement: Mapping) -> float:
    """The probability after a stage update, with the engagement the session has reported so far."""
    intent = session.intent_signals or {}
    features = conversion_model.snapshot_features(
        device=session.device_type,
        source=session.source,
        path=session.journey_path,
        stage=stage,
        engagement={**session.engagement, **engagement}.get("engagement_score"),
        purchase_intent=intent.get("purchase_intent"),
        persona=session.persona_type,
        persona_confidence=session.persona_confidence,
        returning=session.returning,
        started_at=session.started_at,
    )
    return _served(
        session.site_id, features, intent=intent, engagement_score=engagement.get("engagement_score"), start=False
    )


class ModelProbability:
    """The probabilities the journey serves (:mod:`core.hooks`): the site's active model, else the priors."""

    session_start = staticmethod(session_start_probability)
    stage_update = staticmethod(stage_update_probability)


PROBABILITY_PROVIDER = ModelProbability()
