"""Who may take a piece of work: the one place the eligibility rule lives.

``rejections(facts, requirement)`` answers, for one agent and one step of one item, every reason the
agent may not take it (an empty list means eligible). The facts about agents are gathered by
``agent_facts`` (many agents, one item: one query whatever the number of agents) or by
``AgentProfile.facts_for`` (one agent, many items: loaded once). Both feed the same function.

An agent is eligible when they are authorised for the tenant (and hold the queue's product skill),
speak the language at or above the required level, work the channel, are online, on shift (agents
with no shift plan count as on shift while online) and below their capacity for the channel.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from care.accounts.models import Agent, AgentChannel, AgentLanguage, Presence, Shift, TenantAuthorisation
from care.core.languages import Proficiency
from care.routing.models import QueuedItem, TeamKind, team_kind_phrase
from care.routing.rules import StepRule
from care.tickets.models import Ticket
from care.tickets.status import ACTIONABLE


@dataclasses.dataclass(frozen=True)
class AgentFacts:
    """What routing knows about one agent for one tenant and channel, at one moment."""

    agent_id: int
    name: str
    team_id: int
    team_name: str
    team_kind: str
    presence: str
    on_shift: bool
    accepts_offers: bool
    languages: dict[str, int]
    capacity: int | None  # None: does not work the channel
    load: int  # open items of the channel assigned or offered to the agent, all tenants
    has_skill: bool
    presence_changed_at: dt.datetime
    last_routed_at: dt.datetime | None
    last_released_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class Requirement:
    """What one step of one queue asks for one item."""

    channel: str
    language: str
    min_proficiency: int
    team_kind: str = TeamKind.ANY
    team_id: int | None = None
    team_name: str = ""
    skill_name: str = ""
    declined_by: frozenset[int] = frozenset()

    @classmethod
    def for_step(
        cls,
        step: StepRule,
        *,
        channel: str,
        language: str,
        tenant_level: int,
        skill_name: str = "",
        declined_by: Iterable[int] = (),
    ) -> Requirement:
        return cls(
            channel=channel,
            language=step.language or language,
            min_proficiency=max(step.min_proficiency or 0, tenant_level),
            team_kind=step.team_kind,
            team_id=step.team_id,
            skill_name=skill_name,
            declined_by=frozenset(declined_by),
        )


PRESENCE_REASONS: dict[str, Any] = {
    Presence.AWAY: gettext_lazy("is away"),
    Presence.ON_CALL: gettext_lazy("is on a call"),
    Presence.OFFLINE: gettext_lazy("is offline"),
}


def _level(value: int) -> str:
    return str(Proficiency(value).label).split()[0]


def rejections(facts: AgentFacts, need: Requirement) -> list[str]:
    """Every reason ``facts``' agent may not take work needing ``need``; [] when they may."""
    reasons: list[str] = []
    if facts.agent_id in need.declined_by:
        reasons.append(_("declined this item"))
    if need.skill_name and not facts.has_skill:
        reasons.append(_("lacks the skill %(skill)s") % {"skill": need.skill_name})
    if need.team_id is not None and facts.team_id != need.team_id:
        reasons.append(_("not in the team required by the step"))
    elif need.team_kind != TeamKind.ANY and facts.team_kind != need.team_kind:
        reasons.append(
            _("team %(team)s is not one of the %(kind)s")
            % {"team": facts.team_name, "kind": team_kind_phrase(need.team_kind)}
        )
    level = facts.languages.get(need.language)
    if level is None:
        reasons.append(_("does not speak %(language)s") % {"language": need.language})
    elif level < need.min_proficiency:
        reasons.append(
            _("speaks %(language)s at %(level)s, needs %(needed)s")
            % {"language": need.language, "level": _level(level), "needed": _level(need.min_proficiency)}
        )
    if facts.capacity is None:
        reasons.append(_("does not work %(channel)s") % {"channel": need.channel})
    if facts.presence != Presence.ONLINE:
        reasons.append(str(PRESENCE_REASONS.get(facts.presence, gettext_lazy("is not online"))))
    elif not facts.on_shift:
        reasons.append(_("is not on shift"))
    if facts.capacity is not None and facts.load >= facts.capacity:
        reasons.append(
            _("at capacity (%(load)d of %(capacity)d)") % {"load": facts.load, "capacity": facts.capacity}
        )
    return reasons


# --- Gathering facts ---------------------------------------------------------------------------


def load_expression(channel: str, agent_ref: str = "pk") -> Any:
    """Open work of ``channel`` held by the agent: assigned actionable tickets plus pending offers."""
    assigned = (
        Ticket.objects.filter(assignee=OuterRef(agent_ref), channel=channel, status__in=ACTIONABLE)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    offered = (
        QueuedItem.objects.filter(
            offered_to=OuterRef(agent_ref), channel=channel, state=QueuedItem.State.OFFERED
        )
        .order_by()
        .values("offered_to")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(assigned, output_field=IntegerField()), Value(0)) + Coalesce(
        Subquery(offered, output_field=IntegerField()), Value(0)
    )


def shift_expressions(now: dt.datetime) -> dict[str, Exists]:
    shifts = Shift.objects.filter(agent=OuterRef("pk"))
    return {
        "has_shift_plan": Exists(shifts),
        "is_on_shift": Exists(shifts.filter(starts_at__lte=now, ends_at__gt=now)),
    }


def agent_facts(
    *,
    tenant_id: int,
    channel: str,
    languages: Collection[str],
    skill_id: int | None,
    now: dt.datetime,
) -> list[AgentFacts]:
    """Facts about every active agent authorised for the tenant: one query.

    Only authorised agents are considered at all; who is not trained for a tenant is not a candidate.
    """
    # order_by(): the models' default ordering ("agent", i.e. the agent's user's email) would join
    # agent and user inside every subquery, once per agent: the query would grow with agents squared.
    language_levels = {
        f"level_{code}": Subquery(
            AgentLanguage.objects.filter(agent=OuterRef("pk"), language=code)
            .order_by()
            .values("proficiency")[:1]
        )
        for code in sorted(set(languages))
    }
    skill = (
        Exists(
            TenantAuthorisation.skills.through.objects.filter(
                tenantauthorisation__agent=OuterRef("pk"),
                tenantauthorisation__tenant_id=tenant_id,
                skill_id=skill_id,
            )
        )
        if skill_id
        else Value(True)
    )
    rows = (
        Agent.objects.filter(Q(authorisations__tenant_id=tenant_id), user__is_active=True, team__isnull=False)
        .annotate(
            capacity=Subquery(
                AgentChannel.objects.filter(agent=OuterRef("pk"), channel=channel)
                .order_by()
                .values("capacity")[:1]
            ),
            load=load_expression(channel),
            has_skill=skill,
            **shift_expressions(now),
            **language_levels,
        )
        .values(
            "pk",
            "user__full_name",
            "user__email",
            "team_id",
            "team__name",
            "team__kind",
            "presence",
            "accepts_offers",
            "presence_changed_at",
            "last_routed_at",
            "last_released_at",
            "capacity",
            "load",
            "has_skill",
            "has_shift_plan",
            "is_on_shift",
            *language_levels,
        )
        .order_by("pk")
    )
    return [
        AgentFacts(
            agent_id=row["pk"],
            name=row["user__full_name"] or row["user__email"],
            team_id=row["team_id"],
            team_name=row["team__name"],
            team_kind=row["team__kind"],
            presence=row["presence"],
            on_shift=row["is_on_shift"] or not row["has_shift_plan"],
            accepts_offers=row["accepts_offers"],
            languages={
                key.removeprefix("level_"): row[key] for key in language_levels if row[key] is not None
            },
            capacity=row["capacity"],
            load=row["load"],
            has_skill=bool(row["has_skill"]),
            presence_changed_at=row["presence_changed_at"],
            last_routed_at=row["last_routed_at"],
            last_released_at=row["last_released_at"],
        )
        for row in rows
    ]


@dataclasses.dataclass(frozen=True)
class AgentProfile:
    """Everything about one agent that routing needs for any item: loaded once per pull."""

    agent_id: int
    name: str
    team_id: int
    team_name: str
    team_kind: str
    presence: str
    on_shift: bool
    accepts_offers: bool
    languages: dict[str, int]
    capacities: dict[str, int]
    loads: dict[str, int]
    skills_by_tenant: dict[int, frozenset[int]]  # the tenants the agent is authorised for (active)
    presence_changed_at: dt.datetime
    last_routed_at: dt.datetime | None
    last_released_at: dt.datetime | None

    def facts_for(self, *, tenant_id: int, channel: str, skill_id: int | None) -> AgentFacts:
        return AgentFacts(
            agent_id=self.agent_id,
            name=self.name,
            team_id=self.team_id,
            team_name=self.team_name,
            team_kind=self.team_kind,
            presence=self.presence,
            on_shift=self.on_shift,
            accepts_offers=self.accepts_offers,
            languages=self.languages,
            capacity=self.capacities.get(channel),
            load=self.loads.get(channel, 0),
            has_skill=skill_id is None or skill_id in self.skills_by_tenant.get(tenant_id, frozenset()),
            presence_changed_at=self.presence_changed_at,
            last_routed_at=self.last_routed_at,
            last_released_at=self.last_released_at,
        )

    def spare_channels(self) -> list[str]:
        return [c for c, capacity in self.capacities.items() if self.loads.get(c, 0) < capacity]


def agent_profile(agent: Agent, *, now: dt.datetime) -> AgentProfile:
    """The profile of an agent whose row the caller loaded (and locked) with ``select_related("user",
    "team")``: four small queries."""
    languages = dict(agent.languages.values_list("language", "proficiency"))
    capacities = dict(agent.channels.values_list("channel", "capacity"))
    loads = dict(
        Ticket.objects.filter(assignee=agent, status__in=ACTIONABLE)
        .order_by()
        .values_list("channel")
        .annotate(n=Count("pk"))
    )
    for channel, n in (
        QueuedItem.objects.filter(offered_to=agent, state=QueuedItem.State.OFFERED)
        .order_by()
        .values_list("channel")
        .annotate(n=Count("pk"))
    ):
        loads[channel] = loads.get(channel, 0) + n
    skills: dict[int, set[int]] = {}
    for tenant_id, skill_id in TenantAuthorisation.objects.filter(
        agent=agent, tenant__is_active=True
    ).values_list("tenant_id", "skills"):
        skills.setdefault(tenant_id, set())
        if skill_id is not None:
            skills[tenant_id].add(skill_id)
    shifts = Shift.objects.filter(agent=agent)
    on_shift = not shifts.exists() or shifts.filter(starts_at__lte=now, ends_at__gt=now).exists()
    return AgentProfile(
        agent_id=agent.pk,
        name=agent.user.full_name or agent.user.email,
        team_id=agent.team_id,
        team_name=agent.team.name,
        team_kind=agent.team.kind,
        presence=agent.presence,
        on_shift=on_shift,
        accepts_offers=agent.accepts_offers,
        languages=languages,
        capacities=capacities,
        loads=loads,
        skills_by_tenant={k: frozenset(v) for k, v in skills.items()},
        presence_changed_at=agent.presence_changed_at,
        last_routed_at=agent.last_routed_at,
        last_released_at=agent.last_released_at,
    )


def current_load(agent_id: int, channel: str) -> int:
    """The agent's load on ``channel`` now; read after locking the agent row, so it is exact."""
    row = (
        Agent.objects.filter(pk=agent_id)
        .annotate(load=load_expression(channel))
        .values_list("load", flat=True)
    )
    return int(row.get())
