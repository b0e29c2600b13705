"""Routing configuration as the engine reads it, and the checks that reject impossible configuration.

The engine never walks model instances while deciding: ``rules_for_tenants`` loads queues and steps
once into frozen dataclasses. A tenant without queues (or work no queue matches) gets the default:
one step, any authorised agent at the tenant's required level, at any time.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from care.accounts.models import Team
from care.core.languages import Proficiency
from care.core.memo import ConfigMemo
from care.routing.models import RoutingQueue, RoutingStep, StepHours, TeamKind, hours_phrase, team_kind_phrase

if TYPE_CHECKING:
    from care.tenants.models import Tenant


@dataclasses.dataclass(frozen=True)
class StepRule:
    key: str  # "12" for RoutingStep 12, "default" for the implicit step
    after_seconds: int
    hours: str
    team_kind: str
    team_id: int | None
    language: str  # "" means the customer's language
    min_proficiency: int | None  # None means the tenant's required level
    label: str


@dataclasses.dataclass(frozen=True)
class QueueRules:
    queue_id: int | None
    name: str
    channels: frozenset[str]
    languages: frozenset[str]
    tags: frozenset[str]
    required_skill_id: int | None
    required_skill_name: str
    strategy: str
    offer_timeout_seconds: int
    overflow_queue_id: int | None
    overflow_after_seconds: int | None
    steps: tuple[StepRule, ...]

    def matches(self, *, channel: str, language: str, tags: Iterable[str]) -> bool:
        return (
            (not self.channels or channel in self.channels)
            and (not self.languages or language in self.languages)
            and (not self.tags or not self.tags.isdisjoint(tags))
        )


DEFAULT_STEP = StepRule(
    key="default",
    after_seconds=0,
    hours=StepHours.ANY,
    team_kind=TeamKind.ANY,
    team_id=None,
    language="",
    min_proficiency=None,
    label="any authorised agent",
)


def default_rules() -> QueueRules:
    return QueueRules(
        queue_id=None,
        name=_("Default"),
        channels=frozenset(),
        languages=frozenset(),
        tags=frozenset(),
        required_skill_id=None,
        required_skill_name="",
        strategy="",
        offer_timeout_seconds=30,
        overflow_queue_id=None,
        overflow_after_seconds=None,
        steps=(DEFAULT_STEP,),
    )


def _step_rule(step: RoutingStep) -> StepRule:
    return StepRule(
        key=str(step.pk),
        after_seconds=step.after_seconds,
        hours=step.hours,
        team_kind=step.team_kind,
        team_id=step.team_id,
        language=step.language,
        min_proficiency=step.min_proficiency,
        label=describe_step(step),
    )


def _queue_rules(queue: RoutingQueue, steps: Sequence[RoutingStep]) -> QueueRules:
    ordered = sorted(steps, key=lambda s: (s.after_seconds, s.position, s.pk))
    return QueueRules(
        queue_id=queue.pk,
        name=queue.name,
        channels=frozenset(queue.channels),
        languages=frozenset(queue.languages),
        tags=frozenset(queue.tags),
        required_skill_id=queue.required_skill_id,
        required_skill_name=queue.required_skill.name if queue.required_skill else "",
        strategy=queue.strategy,
        offer_timeout_seconds=queue.offer_timeout_seconds,
        overflow_queue_id=queue.overflow_queue_id,
        overflow_after_seconds=queue.overflow_after_seconds,
        steps=tuple(_step_rule(s) for s in ordered) or (DEFAULT_STEP,),
    )


@dataclasses.dataclass(frozen=True)
class TenantRules:
    """All queues of one tenant, in matching order, and by id (overflow targets)."""

    queues: tuple[QueueRules, ...]
    by_id: dict[int, QueueRules]

    def for_queue(self, queue_id: int | None) -> QueueRules:
        if queue_id is not None and queue_id in self.by_id:
            return self.by_id[queue_id]
        return default_rules()

    def match(self, *, channel: str, language: str, tags: Iterable[str]) -> QueueRules:
        tags = list(tags)
        for queue in self.queues:
            if queue.matches(channel=channel, language=language, tags=tags):
                return queue
        return default_rules()


def rules_for_tenants(tenant_ids: Iterable[int]) -> dict[int, TenantRules]:
    """Active queues of these tenants with their steps: two queries whatever the number of tenants."""
    tenant_ids = list(set(tenant_ids))
    queues = list(
        RoutingQueue.objects.filter(tenant_id__in=tenant_ids, is_active=True)
        .select_related("required_skill")
        .prefetch_related("steps__team")
        .order_by("tenant_id", "position", "name")
    )
    grouped: dict[int, list[QueueRules]] = defaultdict(list)
    for queue in queues:
        grouped[queue.tenant_id].append(_queue_rules(queue, list(queue.steps.all())))
    return {
        tenant_id: TenantRules(
            queues=tuple(grouped[tenant_id]), by_id={q.queue_id: q for q in grouped[tenant_id] if q.queue_id}
        )
        for tenant_id in tenant_ids
    }


RULES_MEMO: ConfigMemo[TenantRules] = ConfigMemo("routing rules")


def rules_of_tenant_memoised(tenant_id: int) -> TenantRules:
    """One tenant's rules, read at most every ``CONFIG_MEMO_SECONDS`` per process (for a ringing call);
    cleared when queues, steps, teams or skills are saved in this process (RoutingConfig.ready)."""
    return RULES_MEMO.get(tenant_id, lambda: rules_for_tenants([tenant_id])[tenant_id])


# --- Descriptions ---------------------------------------------------------------------------------


def describe_step(step: RoutingStep) -> str:
    parts = [_("after %(seconds)d s") % {"seconds": step.after_seconds}]
    if step.hours != StepHours.ANY:
        parts.append(hours_phrase(step.hours))
    if step.team_id:
        parts.append(_("team %(team)s") % {"team": step.team})
    elif step.team_kind != TeamKind.ANY:
        parts.append(team_kind_phrase(step.team_kind))
    language = step.language or _("customer's language")
    if step.min_proficiency:
        parts.append(
            _("%(language)s at %(level)s or better")
            % {"language": language, "level": Proficiency(step.min_proficiency).label.split()[0]}
        )
    elif step.language:
        parts.append(_("in %(language)s") % {"language": language})
    return " · ".join(parts)


# --- Checks run when configuration is saved -------------------------------------------------------


def check_queue(queue: RoutingQueue) -> None:
    """Reject a queue that is inconsistent with its tenant or closes an overflow cycle."""
    errors: dict[str, list[str]] = defaultdict(list)
    tenant: Tenant | None = queue.tenant if queue.tenant_id else None
    if tenant is not None:
        served = set(tenant.languages)
        foreign = sorted(set(queue.languages) - served)
        if foreign:
            errors["languages"].append(
                _("%(tenant)s does not serve %(languages)s (it serves %(served)s).")
                % {"tenant": tenant, "languages": ", ".join(foreign), "served": ", ".join(tenant.languages)}
            )
        if queue.required_skill is not None and queue.required_skill.tenant_id != tenant.pk:
            errors["required_skill"].append(_("That skill belongs to another tenant."))
    if queue.overflow_queue_id is None and queue.overflow_after_seconds is not None:
        errors["overflow_queue"].append(_("Say which queue to overflow to, or clear the overflow delay."))
    if queue.overflow_queue_id is not None:
        if queue.overflow_after_seconds is None:
            errors["overflow_after_seconds"].append(_("Say after how many seconds the work overflows."))
        target = queue.overflow_queue
        if target is not None and tenant is not None and target.tenant_id != tenant.pk:
            errors["overflow_queue"].append(_("A queue can only overflow to a queue of the same tenant."))
        cycle = _overflow_cycle(queue)
        if cycle:
            errors["overflow_queue"].append(
                _("This overflow closes a cycle: %(cycle)s. Work would move in circles.")
                % {"cycle": " → ".join(cycle)}
            )
    if errors:
        raise ValidationError(dict(errors))


def _overflow_cycle(queue: RoutingQueue) -> list[str]:
    """The names along the overflow chain if it returns to ``queue``, else []."""
    path = [queue.name]
    seen = {queue.pk} if queue.pk else set()
    current = queue.overflow_queue
    while current is not None:
        path.append(current.name)
        if current.pk in seen or (queue.pk is not None and current.pk == queue.pk):
            return path
        seen.add(current.pk)
        current = current.overflow_queue
    return []


def check_step(step: RoutingStep) -> None:
    """Reject a step no agent could ever satisfy, and fallbacks the tenant does not allow."""
    # A queue added together with its steps (one admin form) is not saved yet: no queue_id, but the
    # step holds the unsaved queue, whose tenant the checks need.
    queue = step.queue if step.queue_id or RoutingStep.queue.is_cached(step) else None
    if queue is None or not queue.tenant_id:
        return
    tenant = queue.tenant
    errors: dict[str, list[str]] = defaultdict(list)
    team: Team | None = step.team if step.team_id else None
    if team is not None:
        if team.tenant_id not in (None, tenant.pk):
            errors["team"].append(
                _("%(team)s is the in-house team of another company and never serves %(tenant)s.")
                % {"team": team, "tenant": tenant}
            )
        if step.team_kind != TeamKind.ANY and team.kind != step.team_kind:
            errors["team_kind"].append(
                _("%(team)s is not one of the %(kind)s: no agent could satisfy this step.")
                % {"team": team, "kind": team_kind_phrase(step.team_kind)}
            )
    elif step.team_kind == TeamKind.IN_HOUSE and not Team.objects.filter(tenant=tenant).exists():
        errors["team_kind"].append(
            _("%(tenant)s has no in-house team: no agent could satisfy this step.") % {"tenant": tenant}
        )
    if step.language and step.language not in tenant.languages:
        errors["language"].append(
            _("%(tenant)s does not allow serving in %(language)s (it serves %(served)s).")
            % {"tenant": tenant, "language": step.language, "served": ", ".join(tenant.languages)}
        )
    if step.min_proficiency is not None and step.min_proficiency < tenant.required_proficiency:
        errors["min_proficiency"].append(
            _("%(tenant)s requires at least %(level)s.")
            % {"tenant": tenant, "level": Proficiency(tenant.required_proficiency).label}
        )
    if step.hours == StepHours.CLOSED:
        from care.tenants.calendar import calendar_of

        if not calendar_of(tenant).ever_closed:
            errors["hours"].append(
                _("%(tenant)s is served round the clock, so this step would never apply.")
                % {"tenant": tenant}
            )
    if errors:
        raise ValidationError(dict(errors))
