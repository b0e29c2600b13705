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

from django.db import connection
from django.db.models import Count
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
#
# Hand-written SQL: the same query built with the ORM (a dozen correlated subqueries) cost about
# 35 ms of Python per decision to compile, ten times its execution. Table names come from the models.


def _tables() -> dict[str, str]:
    return {
        "agent": Agent._meta.db_table,
        "user": Agent._meta.get_field("user").related_model._meta.db_table,  # type: ignore[union-attr]
        "team": Agent._meta.get_field("team").related_model._meta.db_table,  # type: ignore[union-attr]
        "auth": TenantAuthorisation._meta.db_table,
        "auth_skills": TenantAuthorisation.skills.through._meta.db_table,
        "channel": AgentChannel._meta.db_table,
        "language": AgentLanguage._meta.db_table,
        "shift": Shift._meta.db_table,
        "ticket": Ticket._meta.db_table,
        "item": QueuedItem._meta.db_table,
    }


# Load = open work of the channel held by the agent: assigned actionable tickets plus pending offers.
_LOAD_SQL = """
    COALESCE((SELECT COUNT(*) FROM {ticket} tk
              WHERE tk.assignee_id = a.id AND tk.channel = %(channel)s
                AND tk.status = ANY(%(actionable)s)), 0)
    + COALESCE((SELECT COUNT(*) FROM {item} qi
                WHERE qi.offered_to_id = a.id AND qi.channel = %(channel)s AND qi.state = 'offered'), 0)
"""

_FACTS_SQL = """
SELECT a.id, u.full_name, u.email, a.team_id, t.name, t.kind, a.presence, a.accepts_offers,
       a.presence_changed_at, a.last_routed_at, a.last_released_at,
       (SELECT ac.capacity FROM {channel} ac
        WHERE ac.agent_id = a.id AND ac.channel = %(channel)s) AS capacity,
       {load} AS load,
       (%(skill)s::bigint IS NULL OR EXISTS (
           SELECT 1 FROM {auth_skills} s WHERE s.tenantauthorisation_id = ta.id AND s.skill_id = %(skill)s
       )) AS has_skill,
       (NOT EXISTS (SELECT 1 FROM {shift} sh WHERE sh.agent_id = a.id)
        OR EXISTS (SELECT 1 FROM {shift} sh WHERE sh.agent_id = a.id
                   AND sh.starts_at <= %(now)s AND sh.ends_at > %(now)s)) AS on_shift,
       (SELECT json_object_agg(al.language, al.proficiency) FROM {language} al
        WHERE al.agent_id = a.id AND al.language = ANY(%(languages)s)) AS languages
FROM {agent} a
JOIN {auth} ta ON ta.agent_id = a.id AND ta.tenant_id = %(tenant)s
JOIN {user} u ON u.id = a.user_id
JOIN {team} t ON t.id = a.team_id
WHERE u.is_active
ORDER BY a.id
"""
_CURRENT_LOAD_SQL = "SELECT {load} FROM {agent} a WHERE a.id = %(agent)s"


def _sql(template: str) -> str:
    """A statement with the table names (from the models) filled in; values stay parameters."""
    tables = _tables()
    return template.format(load=_LOAD_SQL.format(**tables), **tables)


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
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "channel": channel,
        "languages": sorted(set(languages)),
        "skill": skill_id,
        "now": now,
        "actionable": [str(s) for s in ACTIONABLE],
    }
    with connection.cursor() as cursor:
        cursor.execute(_sql(_FACTS_SQL), params)
        rows = cursor.fetchall()
    return [
        AgentFacts(
            agent_id=agent_id,
            name=full_name or email,
            team_id=team_id,
            team_name=team_name,
            team_kind=team_kind,
            presence=presence,
            on_shift=on_shift,
            accepts_offers=accepts_offers,
            languages=dict(levels or {}),
            capacity=capacity,
            load=int(load),
            has_skill=has_skill,
            presence_changed_at=presence_changed_at,
            last_routed_at=last_routed_at,
            last_released_at=last_released_at,
        )
        for (
            agent_id,
            full_name,
            email,
            team_id,
            team_name,
            team_kind,
            presence,
            accepts_offers,
            presence_changed_at,
            last_routed_at,
            last_released_at,
            capacity,
            load,
            has_skill,
            on_shift,
            levels,
        ) in rows
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
    sql = "SELECT " + _LOAD_SQL + " FROM {agent} a WHERE a.id = %(agent)s"  # noqa: S608 - tables only
    params: dict[str, Any] = {
        "agent": agent_id,
        "channel": channel,
        "actionable": [str(s) for s in ACTIONABLE],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_tables()), params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0
