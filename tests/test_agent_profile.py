from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from care.accounts.models import Presence, Skill
from care.accounts.services import (
    agent_authorise,
    agent_deauthorise,
    agent_set_channel,
    agent_set_language,
    agent_set_presence,
)
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Ticket
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket

pytestmark = pytest.mark.django_db


def test_presence_change_moves_timestamp_only_on_real_change(agent):
    agent = agent_set_presence(agent=agent, presence=Presence.ONLINE)
    changed_at = agent.presence_changed_at
    first_seen = agent.last_seen_at
    agent = agent_set_presence(agent=agent, presence=Presence.ONLINE)  # a heartbeat, no change
    assert agent.presence == Presence.ONLINE
    assert agent.presence_changed_at == changed_at
    assert agent.last_seen_at >= first_seen
    agent = agent_set_presence(agent=agent, presence=Presence.AWAY)
    assert agent.presence_changed_at > changed_at


def test_unknown_presence_is_refused(agent):
    with pytest.raises(BusinessRuleViolation, match="not a presence state"):
        agent_set_presence(agent=agent, presence="asleep")


def test_authorising_and_withdrawing_controls_visibility(tenant_a, tenant_b):
    agent = make_agent(tenants=[tenant_a])
    ticket_b = make_ticket(tenant=tenant_b)
    agent_authorise(agent=agent, tenant=tenant_b)
    agent_authorise(agent=agent, tenant=tenant_b)  # idempotent
    assert agent.authorisations.filter(tenant=tenant_b).count() == 1
    fresh_user = type(agent.user).objects.get(pk=agent.user.pk)
    assert ticket_b in Ticket.objects.visible_to(fresh_user)

    assert agent_deauthorise(agent=agent, tenant=tenant_b) is True
    assert agent_deauthorise(agent=agent, tenant=tenant_b) is False
    fresh_user = type(agent.user).objects.get(pk=agent.user.pk)
    assert ticket_b not in Ticket.objects.visible_to(fresh_user)


def test_skills_of_another_tenant_are_refused(tenant_a, tenant_b, agent):
    foreign = Skill.objects.create(tenant=tenant_b, code="roaming", name="Roaming")
    with pytest.raises(BusinessRuleViolation, match="another tenant"):
        agent_authorise(agent=agent, tenant=tenant_a, skills=[foreign])


def test_languages_and_channels(agent):
    row = agent_set_language(agent=agent, language="tr", proficiency=4)
    assert row.get_proficiency_display().startswith("B2")
    assert agent_set_language(agent=agent, language="tr", proficiency=5).pk == row.pk
    with pytest.raises(ValidationError):
        agent_set_language(agent=agent, language="xx", proficiency=3)

    assert agent_set_channel(agent=agent, channel="email").capacity == 8
    assert agent_set_channel(agent=agent, channel="email", capacity=5).capacity == 5
    with pytest.raises(ValidationError):
        agent_set_channel(agent=agent, channel="social", capacity=500)
