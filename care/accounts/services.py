"""Writes on agents: presence, authorisations, languages and channels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from care.accounts.models import Agent, AgentChannel, AgentLanguage, Presence, Skill, TenantAuthorisation
from care.accounts.signals import agent_presence_changed
from care.core.errors import BusinessRuleViolation
from care.core.languages import validate_language_code

if TYPE_CHECKING:
    from care.tenants.models import Tenant


def agent_set_presence(*, agent: Agent, presence: str) -> Agent:
    """Record a presence change; ``presence_changed_at`` moves only when the state really changes.

    Compare-and-swap on the old state, so that two heartbeats racing do not both count as a change.
    """
    if presence not in Presence.values:
        raise BusinessRuleViolation(_("%(presence)s is not a presence state.") % {"presence": presence})
    now = timezone.now()
    changed = (
        Agent.objects.filter(pk=agent.pk)
        .exclude(presence=presence)
        .update(presence=presence, presence_changed_at=now, last_seen_at=now, updated_at=now)
    )
    if not changed:
        Agent.objects.filter(pk=agent.pk).update(last_seen_at=now)
    agent.refresh_from_db(fields=["presence", "presence_changed_at", "last_seen_at", "updated_at"])
    if changed:
        agent_presence_changed.send(sender=Agent, agent=agent, presence=presence)
    return agent


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
