"""Writes on agents: presence (set by hand, by websocket heartbeats, by the sweep), authorisations,
languages and channels."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from care.accounts.models import (
    Agent,
    AgentChannel,
    AgentLanguage,
    Presence,
    PresenceSource,
    Skill,
    TenantAuthorisation,
)
from care.accounts.signals import agent_presence_changed
from care.core.errors import BusinessRuleViolation
from care.core.languages import validate_language_code

if TYPE_CHECKING:
    from care.tenants.models import Tenant

# Agents one sweep sets offline at most; the task runs again at once when a sweep was full.
PRESENCE_SWEEP_BATCH = 500


def agent_set_presence(
    *,
    agent: Agent,
    presence: str,
    source: str = PresenceSource.MANUAL,
    expected: tuple[str, str] | None = None,
) -> Agent:
    """Record a presence and who set it; ``presence_changed_at`` moves only when the state really changes.

    Compare-and-swap on the old state, so that two heartbeats racing do not both count as a change.
    ``expected`` is the ``(presence, source)`` an automatic rule decided on: if the agent has left it
    meanwhile (say they chose a presence by hand), nothing is changed. Routing's receiver locks queued
    work when an agent goes offline: call inside a transaction then.
    """
    if presence not in Presence.values:
        raise BusinessRuleViolation(_("%(presence)s is not a presence state.") % {"presence": presence})
    if source not in PresenceSource.values:
        raise BusinessRuleViolation(_("%(source)s is not a presence source.") % {"source": source})
    now = timezone.now()
    agents = Agent.objects.filter(pk=agent.pk)
    if expected is not None:
        agents = agents.filter(presence=expected[0], presence_source=expected[1])
    changed = agents.exclude(presence=presence).update(
        presence=presence, presence_source=source, presence_changed_at=now, last_seen_at=now, updated_at=now
    )
    if not changed and expected is None:
        # Choosing by hand the presence an automatic rule had set makes it the agent's own choice
        # (away while idle stays away): the source changes, the state and its time do not.
        Agent.objects.filter(pk=agent.pk).update(
            last_seen_at=now,
            presence_source=Case(When(presence=presence, then=Value(source)), default=F("presence_source")),
        )
    if changed:
        # The row now holds exactly these values: no need to read it back.
        agent.presence, agent.presence_source = presence, source
        agent.presence_changed_at = agent.last_seen_at = agent.updated_at = now
    else:
        agent.refresh_from_db(
            fields=["presence", "presence_source", "presence_changed_at", "last_seen_at", "updated_at"]
        )
    if changed:
        agent_presence_changed.send(
            sender=Agent,
            agent=agent,
            presence=presence,
            tenant_ids=functools.cache(partial(_active_tenant_ids, agent.pk)),
        )
    return agent


def _active_tenant_ids(agent_id: int) -> list[int]:
    return list(
        TenantAuthorisation.objects.filter(agent_id=agent_id, tenant__is_active=True)
        .order_by("tenant_id")
        .values_list("tenant_id", flat=True)
    )


# One statement for the common heartbeat (nothing changes): record it and read what the rules need.
_HEARTBEAT_SQL = """
    UPDATE accounts_agent SET heartbeat_at = %s, last_seen_at = %s WHERE id = %s
    RETURNING presence, presence_source
"""


def _heartbeat_change(presence: str, source: str, *, idle: bool) -> tuple[str, str] | None:
    """The ``(presence, source)`` a heartbeat moves the agent to, or None. The automatic rules undo
    only what they set: a presence chosen by hand (away, offline, on a call) is never overridden."""
    timed_out = presence == Presence.OFFLINE and source == PresenceSource.TIMEOUT
    idled = presence == Presence.AWAY and source == PresenceSource.IDLE
    if idle and (presence == Presence.ONLINE or timed_out):
        # A timed-out agent whose connection is back but who is not at the keyboard is away, not gone.
        return Presence.AWAY, PresenceSource.IDLE
    if not idle and (idled or timed_out):
        return Presence.ONLINE, PresenceSource.MANUAL
    return None


def agent_heartbeat(*, agent_id: int, idle: bool) -> str:
    """A websocket heartbeat of the agent (``idle``: no input for a while); returns their presence after it.

    One UPDATE when the presence stays as it is; a change goes through ``agent_set_presence`` (its
    signal lets routing react) in a transaction of its own. Raises ``Agent.DoesNotExist`` for an agent
    that is gone.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_HEARTBEAT_SQL, [now, now, agent_id])
        row = cursor.fetchone()
    if row is None:
        raise Agent.DoesNotExist(_("There is no agent %(id)s.") % {"id": agent_id})
    presence, source = str(row[0]), str(row[1])
    change = _heartbeat_change(presence, source, idle=idle)
    if change is None:
        return presence
    with transaction.atomic():
        agent = Agent.objects.select_related("user").get(pk=agent_id)
        agent_set_presence(agent=agent, presence=change[0], source=change[1], expected=(presence, source))
    return agent.presence


def agent_presence_sweep(*, now: dt.datetime | None = None) -> int:
    """Set offline the agents whose heartbeats stopped; returns how many (at most ``PRESENCE_SWEEP_BATCH``).

    Timed out: a heartbeat-kept agent (``heartbeat_at`` set) who is not offline and has shown no sign of
    life for ``PRESENCE_TIMEOUT_SECONDS``: no heartbeat and no presence change (an agent who chose
    "online" before their first heartbeat of the day is not thrown out at once). Each agent is locked
    (``SKIP LOCKED``) and checked again in a transaction of its own, so a heartbeat or another sweep
    running at the same time wins or waits, and the sweep may run twice.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=settings.PRESENCE_TIMEOUT_SECONDS)
    stale = Agent.objects.filter(heartbeat_at__lt=cutoff, presence_changed_at__lt=cutoff).exclude(
        presence=Presence.OFFLINE
    )
    candidates = list(
        stale.order_by("heartbeat_at", "pk").values_list("pk", flat=True)[:PRESENCE_SWEEP_BATCH]
    )
    count = 0
    for agent_id in candidates:
        with transaction.atomic():
            agent = (
                stale.select_for_update(skip_locked=True, of=("self",))
                .select_related("user")
                .filter(pk=agent_id)
                .first()
            )
            if agent is None:  # a heartbeat came, or another sweep took it, meanwhile
                continue
            agent_set_presence(agent=agent, presence=Presence.OFFLINE, source=PresenceSource.TIMEOUT)
            count += 1
    return count


@transaction.atomic
def agent_authorise(
    *, agent: Agent, tenant: Tenant, skills: Iterable[Skill] = (), note: str = ""
) -> TenantAuthorisation:
    """Authorise ``agent`` for ``tenant`` (idempotent), with product skills of that tenant only."""
    skills = list(skills)
    foreign = [skill for skill in skills if skill.tenant_id != tenant.pk]
    if foreign:
        raise BusinessRuleViolation(
            _("These skills belong to another tenant: %(skills)s.") % {"skills": ", ".join(map(str, foreign))}
        )
    authorisation, _created = TenantAuthorisation.objects.get_or_create(
        agent=agent, tenant=tenant, defaults={"note": note}
    )
    if skills:
        authorisation.skills.add(*skills)
    return authorisation


def agent_deauthorise(*, agent: Agent, tenant: Tenant) -> bool:
    """Withdraw the authorisation; returns whether there was one."""
    deleted, _rows = TenantAuthorisation.objects.filter(agent=agent, tenant=tenant).delete()
    return deleted > 0


def agent_set_language(*, agent: Agent, language: str, proficiency: int) -> AgentLanguage:
    validate_language_code(language)
    row, _created = AgentLanguage.objects.update_or_create(
        agent=agent, language=language, defaults={"proficiency": proficiency}
    )
    return row


def agent_set_channel(*, agent: Agent, channel: str, capacity: int | None = None) -> AgentChannel:
    """Let ``agent`` work ``channel`` with ``capacity`` items at once (the channel's default if None)."""
    row = AgentChannel.objects.filter(agent=agent, channel=channel).first() or AgentChannel(
        agent=agent, channel=channel
    )
    row.capacity = capacity or AgentChannel.DEFAULT_CAPACITY[channel]
    row.full_clean(validate_unique=False)
    row.save()
    return row
