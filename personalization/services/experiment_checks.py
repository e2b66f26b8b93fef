"""The rules an experiment's design must follow to run, and where it may run.

The services call these (``approvable_create``, ``experiment_edit``, ``approval_submit``
and ``approval_decide`` in :mod:`personalization.services.approvals`), so the admin, the
API and the tests refuse the same things. A refusal is a Django ``ValidationError`` whose
keys name the field: an experiment field (``slot``, ``allocation``, ``traffic_share``),
``arms`` for the arms as a whole, or ``arms[i].variant`` / ``arms[i].weight`` /
``arms[i].is_paused`` for the arm at position ``i`` of the list checked (``i`` from 0).

Design (checked on create, edit, submit and approve):

- every arm's variant belongs to the experiment's site and slot, and appears once;
- exactly one arm is the control, and it is not paused;
- every weight is in [0, 1], and the active arms' weights sum to 1 within
  :data:`WEIGHT_TOLERANCE` (only while the arms are still the marketer's, i.e. before the
  first approval: afterwards weights belong to the optimizer and to approved pauses,
  which keep their own rules);
- at least two active arms (a bandit allocates between at least two; a fixed split with
  one arm compares nothing): the decision engine runs nothing with fewer.

Slot (checked on submit and approve, since other experiments come and go): two running
experiments on one slot are refused unless both are declared ``mutually_exclusive``.
Experiments have no audience targeting of their own, so the audience of an experiment
is every visitor of its slot, and the rule is per slot. Mutually exclusive experiments
split the slot's visitors: a visitor's slot hash (``decisions.bucket(slot, visitor,
"exclusion")``, uniform in [0, 1)) falls in at most one experiment's range
``[exclusion_start, exclusion_start + traffic_share)``. Ranges are placed at approval
(:func:`slot_place`): an experiment keeps its range while it still fits, else takes the
lowest free gap; no gap wide enough is a refusal on ``traffic_share``. This is
GrowthBook's namespaces, with the range chosen for the marketer.

Serving (checked on approve): every arm's variant has an approved version that serves,
else the experiment would go live and never run.
"""

from __future__ import annotations

from collections import defaultdict

from django.core.exceptions import ValidationError

from personalization.models import Allocation, ContentVariant, Experiment, ProposalKind, Status

WEIGHT_TOLERANCE = 0.001


class Refusal:
    """Errors collected per field, raised together as one ``ValidationError``."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = defaultdict(list)

    def add(self, field: str, message: str) -> None:
        self.errors[field].append(message)

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError(dict(self.errors))


def arms_of(experiment: Experiment) -> list[dict]:
    """The experiment's stored arms, as the services take them (control first, then by id)."""
    return [
        {"variant": variant, "is_control": is_control, "weight": weight, "is_paused": is_paused}
        for variant, is_control, weight, is_paused in experiment.arms.order_by("-is_control", "id").values_list(
            "variant_id", "is_control", "weight", "is_paused"
        )
    ]


def design_check(*, experiment: Experiment, arms: list[dict]) -> None:
    """Refuse an experiment whose arms cannot run (see the module's *Design* rules)."""
    refusal = Refusal()
    variants = {
        variant.pk: variant
        for variant in ContentVariant.objects.filter(pk__in=[arm["variant"] for arm in arms]).select_related("slot")
    }
    seen: dict[int, int] = {}
    for index, arm in enumerate(arms):
        variant = variants.get(arm["variant"])
        if variant is None:
            refusal.add(f"arms[{index}].variant", f"Variant #{arm['variant']} does not exist.")
        elif variant.site_id != experiment.site_id:
            refusal.add(f"arms[{index}].variant", f"{variant.key} belongs to another site.")
        elif variant.slot_id != experiment.slot_id:
            refusal.add(
                f"arms[{index}].variant",
                f"{variant.key} is content for slot {variant.slot.key}, not for the experiment's slot "
                f"{experiment.slot.key}: it could never be shown there.",
            )
        if arm["variant"] in seen:
            refusal.add(f"arms[{index}].variant", f"This variant is already arm {seen[arm['variant']] + 1}.")
        seen.setdefault(arm["variant"], index)
        if not 0 <= arm["weight"] <= 1:
            refusal.add(f"arms[{index}].weight", "A weight is a share of the traffic, from 0 to 1.")
        if arm["is_control"] and arm.get("is_paused"):
            refusal.add(
                f"arms[{index}].is_paused", "The control is never paused: it is what the others are compared to."
            )
    controls = [index for index, arm in enumerate(arms) if arm["is_control"]]
    if not controls:
        refusal.add("arms", "Mark exactly one arm as the control (is_control): none is.")
    elif len(controls) > 1:
        numbers = ", ".join(str(index + 1) for index in controls)
        refusal.add("arms", f"Mark exactly one arm as the control (is_control): arms {numbers} are.")
    active = [arm for arm in arms if not arm.get("is_paused")]
    if len(active) < 2:
        if experiment.allocation == Allocation.BANDIT:
            refusal.add("allocation", f"A bandit allocates traffic between at least two arms; it has {len(active)}.")
        else:
            refusal.add(
                "arms", f"An experiment compares at least two arms, a control and a treatment; it has {len(active)}."
            )
    total = sum(arm["weight"] for arm in active)
    if experiment.published is None and active and abs(total - 1) > WEIGHT_TOLERANCE + 1e-9:
        refusal.add(
            "arms", f"The active arms' weights sum to {total:.4g}; they must sum to 1 (within {WEIGHT_TOLERANCE})."
        )
    refusal.raise_any()


def serving_check(*, arms: list[dict]) -> None:
    """Refuse arms whose variant has no approved version serving (see the module's *Serving* rule)."""
    refusal = Refusal()
    variants = {
        variant.pk: variant for variant in ContentVariant.objects.filter(pk__in=[arm["variant"] for arm in arms])
    }
    for index, arm in enumerate(arms):
        variant = variants.get(arm["variant"])
        if variant is not None and not variant.serving:
            state = "has no approved version yet" if variant.published is None else f"is {variant.status}"
            refusal.add(f"arms[{index}].variant", f"{variant.key} {state}: approve it (or resume it) first.")
    refusal.raise_any()


def _range_of(experiment: Experiment) -> tuple[float, float]:
    share = (experiment.published or {}).get("traffic_share", experiment.traffic_share)
    return experiment.exclusion_start or 0.0, (experiment.exclusion_start or 0.0) + share


def _gaps(taken: list[tuple[float, float]]) -> list[tuple[float, float]]:
    gaps, edge = [], 0.0
    for low, high in sorted(taken):
        if low > edge:
            gaps.append((edge, low))
        edge = max(edge, high)
    if edge < 1:
        gaps.append((edge, 1.0))
    return gaps


def slot_place(*, experiment: Experiment) -> float | None:
    """Where the experiment runs on its slot beside the running ones (see the module's *Slot* rules).

    Returns the start of its range of the slot's visitors when it is mutually exclusive
    (None otherwise); refused with a ``ValidationError`` on ``slot`` (another
    experiment runs there and they are not both mutually exclusive) or on
    ``traffic_share`` (no free range wide enough). Writes nothing: the caller stores the start.
    """
    others = list(
        Experiment.objects.running().filter(slot_id=experiment.slot_id).exclude(pk=experiment.pk).order_by("pk")
    )
    refusal = Refusal()
    blocking = [other for other in others if not (experiment.mutually_exclusive and other.mutually_exclusive)]
    if blocking:
        names = ", ".join(f"'{other.key}'" for other in blocking)
        refusal.add(
            "slot",
            f"Experiment {names} already runs on slot {experiment.slot.key}: two experiments on one slot would "
            "each show their content to the other's visitors. Stop it first, or declare both mutually exclusive "
            "(mutually_exclusive) so the slot's visitors are split between them.",
        )
        refusal.raise_any()
    if not experiment.mutually_exclusive:
        return None
    taken = [_range_of(other) for other in others]
    share = experiment.traffic_share
    fits = [low for low, high in _gaps(taken) if high - low >= share - 1e-9]
    current = experiment.exclusion_start
    if (
        current is not None
        and current + share <= 1 + 1e-9
        and all(current + share <= low or current >= high for low, high in taken)
    ):
        return current
    if fits:
        return fits[0]
    widest = max((high - low for low, high in _gaps(taken)), default=0.0)
    names = ", ".join(f"'{other.key}' {low:.0%}-{high:.0%}" for other, (low, high) in zip(others, taken, strict=True))
    refusal.add(
        "traffic_share",
        f"Slot {experiment.slot.key}'s mutually exclusive experiments ({names}) leave at most {widest:.0%} of its "
        f"visitors free in one range; this experiment asks for {share:.0%}. Lower its traffic share or stop one.",
    )
    refusal.raise_any()
    return None


def serves_its_winner(experiment: Experiment) -> bool:
    """Whether the experiment ended with a winner that the decision engine serves to its
    slot's visitors (see ``selectors._load``): archived with a winner, not stopped since."""
    return (
        experiment.status == Status.ARCHIVED and experiment.winner_id is not None and experiment.published is not None
    )


# People's actions on a running experiment (stop, declare a winner, pause or resume an
# arm), checked when requested and again when approved: the world may have moved on.


def action_refusal(*, kind: str, experiment: Experiment, arms: list, proposed: dict) -> tuple[str, str] | None:
    """Why ``kind`` with ``proposed`` cannot apply to ``experiment`` now, as (field, message); None if it can.

    ``arms`` are the experiment's :class:`ExperimentArm` rows. Rules: the experiment is
    running (approved, not stopped, not ended) - except that a stop also ends a declared
    winner's rollout (:func:`serves_its_winner`); a winner is one of its arms and its
    variant serves; a pause names active treatments (never the control) and leaves at
    least one active treatment (an experiment of the control alone compares nothing);
    a resume names paused arms. Reweights are checked by the optimizer.
    """
    running = experiment.published is not None and experiment.ended_at is None
    running = running and experiment.status not in (Status.PAUSED, Status.ARCHIVED)
    if not running and not (kind == ProposalKind.STOP and serves_its_winner(experiment)):
        state = "ended" if experiment.ended_at is not None else experiment.status
        return (
            "experiment",
            f"{experiment.key} is not running ({state}): there is nothing left to {kind.replace('_', ' ')}.",
        )
    by_variant = {arm.variant_id: arm for arm in arms}
    if kind == ProposalKind.DECLARE_WINNER:
        arm = by_variant.get(proposed["variant"])
        if arm is None:
            return "variant", "The winner must be one of the experiment's arms."
        if not arm.variant.serving:
            return (
                "variant",
                f"{arm.variant.key} does not serve any more ({arm.variant.status}): it cannot be everyone's.",
            )
        return None
    named = [row["variant"] for row in proposed.get("variants", [])]
    if kind == ProposalKind.PAUSE_VARIANT:
        for variant_id in named:
            arm = by_variant.get(variant_id)
            if arm is None:
                return "variant", "Only an arm of the experiment can be paused."
            if arm.is_control:
                return "variant", f"{arm.variant.key} is the control: it is never paused (stop the experiment instead)."
            if arm.is_paused:
                return "variant", f"{arm.variant.key} is already paused."
        left = [arm for arm in arms if not arm.is_control and not arm.is_paused and arm.variant_id not in named]
        if not left:
            return (
                "variant",
                "That would pause the last active treatment: stop the experiment or declare a winner instead.",
            )
    if kind == ProposalKind.RESUME_VARIANT:
        for variant_id in named:
            arm = by_variant.get(variant_id)
            if arm is None or not arm.is_paused:
                key = arm.variant.key if arm is not None else f"#{variant_id}"
                return "variant", f"{key} is not a paused arm of the experiment."
    return None
