"""Which calls become an interaction on which ticket; codes; outbound calls logged by agents."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from care.calls.models import Call, CallCode, CallOutcome, Campaign, Direction, ServiceLevelTarget
from care.calls.selectors import access_call, calls_of_ticket
from care.calls.services import call_event_apply, call_set_codes, outbound_call_log
from care.core.channels import Channel
from care.core.errors import BusinessRuleViolation
from care.tickets.models import Direction as InteractionDirection
from care.tickets.models import Interaction, Ticket
from tests.calls.conftest import CALLER, T0, answered_call, event

pytestmark = pytest.mark.django_db


def apply_all(line, events) -> Call:
    for item in events:
        call_event_apply(line=line, event=item)
    return Call.objects.select_related("ticket", "interaction").get(external_id=events[0].call_id)


def test_an_answered_call_becomes_an_interaction_on_a_new_ticket(line, phone_agent):
    call = apply_all(line, answered_call())

    ticket = call.ticket
    assert ticket.channel == Channel.PHONE
    assert ticket.subject == f"Call from {CALLER}"
    assert ticket.language == "en"  # IVR choice 2
    assert ticket.tags == ["billing"]
    interaction = call.interaction
    assert interaction.ticket == ticket
    assert interaction.external_id == f"call:{call.pk}"
    assert interaction.direction == InteractionDirection.INBOUND
    assert interaction.occurred_at == T0
    assert interaction.author_identity.value == CALLER
    assert "180" in interaction.body_text
    assert "Answered" in interaction.body_text
    assert list(calls_of_ticket(ticket)) == [call]


def test_a_repeated_end_event_adds_no_second_interaction(line, phone_agent):
    events = answered_call()
    apply_all(line, [*events, events[-1], events[-1]])
    assert Interaction.objects.count() == 1


def test_a_second_call_within_the_window_joins_the_ticket(line, phone_agent):
    first = apply_all(line, answered_call("one"))
    Ticket.objects.filter(pk=first.ticket_id).update(updated_at=T0)
    second = apply_all(line, answered_call("two", start=3600 * 5))

    assert second.ticket_id == first.ticket_id
    assert Interaction.objects.filter(ticket_id=first.ticket_id).count() == 2


def test_a_call_after_the_window_opens_a_new_ticket(line, phone_agent):
    first = apply_all(line, answered_call("one"))
    Ticket.objects.filter(pk=first.ticket_id).update(updated_at=T0)
    later = apply_all(line, answered_call("two", start=3600 * (line.ticket_window_hours + 1)))

    assert later.ticket_id != first.ticket_id


def test_a_short_abandoned_call_makes_no_ticket(line):
    call = apply_all(line, [event("offered", 0), event("abandoned", 3)])
    assert call.outcome == CallOutcome.ABANDONED
    assert call.ticket is None
    assert Ticket.objects.count() == 0


def test_a_long_abandoned_call_makes_a_ticket_for_a_callback(line):
    ServiceLevelTarget.objects.create(tenant=line.tenant, short_abandon_seconds=10)
    short = apply_all(line, [event("offered", 0, call_id="s"), event("abandoned", 9, call_id="s")])
    long = apply_all(line, [event("offered", 0, call_id="l"), event("abandoned", 45, call_id="l")])

    assert short.ticket is None
    assert long.ticket is not None
    assert long.queue_wait_seconds == 45


def test_a_rejected_call_is_recorded_without_a_ticket(line):
    call = apply_all(line, [event("offered", 0), event("rejected", 60)])
    assert call.outcome == CallOutcome.REJECTED
    assert call.ticket is None
    assert Ticket.objects.count() == 0


def test_a_voicemail_makes_a_ticket(line):
    call = apply_all(
        line, [event("offered", 0), event("voicemail", 2, recording_url="https://pbx.test/r/1.wav")]
    )
    assert call.outcome == CallOutcome.VOICEMAIL
    assert call.ticket is not None
    assert "https://pbx.test/r/1.wav" in call.interaction.body_text


def test_an_anonymous_caller_is_recorded_without_a_ticket(line, phone_agent):
    events = [event(kind, s, caller="") for kind, s in [("offered", 0), ("answered", 5), ("ended", 60)]]
    call = apply_all(line, events)
    assert call.outcome == CallOutcome.ANSWERED
    assert call.customer is None
    assert call.ticket is None


@pytest.fixture
def codes(tenant_a, tenant_b):
    return {
        "reason": CallCode.objects.create(tenant=tenant_a, kind="reason", code="billing", label="Billing"),
        "sale": CallCode.objects.create(
            tenant=tenant_a, kind="outcome", code="sale", label="Sale", is_sale=True
        ),
        "no_sale": CallCode.objects.create(tenant=tenant_a, kind="outcome", code="no-sale", label="No sale"),
        "other": CallCode.objects.create(tenant=tenant_b, kind="reason", code="billing", label="TSU billing"),
    }


def test_codes_are_set_on_a_call(line, phone_agent, codes):
    call = apply_all(line, answered_call())
    before = call.updated_at
    call_set_codes(call=call, reason=codes["reason"], outcome_code=codes["no_sale"], actor=phone_agent.user)

    call.refresh_from_db()
    assert (call.reason, call.outcome_code) == (codes["reason"], codes["no_sale"])
    assert call.updated_at > before


def test_codes_of_another_tenant_or_kind_are_refused(line, phone_agent, codes):
    call = apply_all(line, answered_call())
    with pytest.raises(BusinessRuleViolation, match="another tenant"):
        call_set_codes(call=call, reason=codes["other"], outcome_code=None, actor=phone_agent.user)
    with pytest.raises(BusinessRuleViolation, match="is not a"):
        call_set_codes(call=call, reason=codes["sale"], outcome_code=None, actor=phone_agent.user)
    call.refresh_from_db()
    assert call.reason is None


def test_an_outsider_cannot_code_a_call(line, phone_agent, codes, outsider):
    call = apply_all(line, answered_call())
    with pytest.raises(BusinessRuleViolation):
        call_set_codes(call=call, reason=codes["reason"], outcome_code=None, actor=outsider.user)


def test_an_outbound_sale_is_logged(tenant_a, phone_agent, codes):
    campaign = Campaign.objects.create(tenant=tenant_a, name="Winter tariff")
    started = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)
    call = outbound_call_log(
        tenant=tenant_a,
        agent=phone_agent,
        dialled="+4930999888",
        started_at=started,
        talk_seconds=300,
        outcome_code=codes["sale"],
        campaign=campaign,
        sale_amount=Decimal("49.90"),
        actor=phone_agent.user,
    )
    assert call.direction == Direction.OUTBOUND
    assert call.outcome == CallOutcome.ANSWERED
    assert call.ended_at == started + dt.timedelta(seconds=300)
    assert call.sale_amount == Decimal("49.90")
    assert call.customer.identities.get().value == "+4930999888"
    assert call.external_id.startswith("outbound:")


def test_an_outbound_call_on_a_ticket_is_on_its_timeline(tenant_a, phone_agent, line):
    ticket = apply_all(line, answered_call()).ticket
    call = outbound_call_log(
        tenant=tenant_a,
        agent=phone_agent,
        dialled=CALLER,
        started_at=T0 + dt.timedelta(hours=1),
        talk_seconds=0,
        outcome_code=None,
        campaign=None,
        sale_amount=None,
        actor=phone_agent.user,
        ticket=ticket,
    )
    assert call.outcome == CallOutcome.MISSED
    assert call.interaction.direction == InteractionDirection.OUTBOUND
    assert call.interaction.author_user == phone_agent.user
    assert list(calls_of_ticket(ticket))[-1] == call


def test_a_sale_amount_needs_a_sale_code_or_a_campaign(tenant_a, phone_agent, codes):
    with pytest.raises(BusinessRuleViolation, match="sale"):
        outbound_call_log(
            tenant=tenant_a,
            agent=phone_agent,
            dialled="+4930999888",
            started_at=T0,
            talk_seconds=60,
            outcome_code=codes["no_sale"],
            campaign=None,
            sale_amount=Decimal("10"),
            actor=phone_agent.user,
        )
    assert not Call.objects.exists()


def test_an_outbound_number_must_be_e164(tenant_a, phone_agent):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="country code"):
        outbound_call_log(
            tenant=tenant_a,
            agent=phone_agent,
            dialled="030 999888",
            started_at=T0,
            talk_seconds=60,
            outcome_code=None,
            campaign=None,
            sale_amount=None,
            actor=phone_agent.user,
        )


def test_access_call_is_scoped(line, phone_agent, outsider):
    from django.http import Http404

    call = apply_all(line, answered_call())
    assert access_call(phone_agent.user, call.pk) == call
    with pytest.raises(Http404):
        access_call(outsider.user, call.pk)
