"""Shared fixtures: two tenants and the three actors every isolation test needs.

- ``agent``: an agent authorised for tenant A only;
- ``supervisor``: a staff supervisor for tenant A (may use the admin, scoped to A);
- ``outsider``: an agent authorised for tenant B only, who must see nothing of A;
- ``portal_user``: a tenant portal user of A; ``admin_user``: a superuser who sees everything.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid

import pytest

from care.accounts.models import Role, Skill, TenantAuthorisation
from care.calls.models import Call, CallCode, Campaign, PhoneLine, ServiceLevelTarget
from care.connectors.models import InboundMessage, Mailbox, OutboundDelivery
from care.connectors.services import inbound_store
from care.contacts.models import Customer, Identity
from care.core.channels import Channel
from care.routing.models import QueuedItem, RoutingDecision, RoutingQueue, RoutingStep
from care.sla.models import SlaClock, SlaEvent, SlaPolicy, Target
from care.sla.services import sla_fire
from care.tenants.models import Guideline, ServiceHours, Tenant, TenantHoliday
from care.tickets.models import Attachment, Direction, Interaction, Ticket, TicketEvent, TicketLink
from care.tickets.services import attachment_store, interaction_add, ticket_link
from tests.factories.accounts import UserFactory, make_agent
from tests.factories.contacts import CustomerFactory, IdentityFactory
from tests.factories.tenants import TenantFactory
from tests.factories.tickets import make_ticket

# The real-worker fixtures (``broker``, ``celery_worker``) for every end-to-end test.
pytest_plugins = ["tests.celery_e2e", "tests.mail_worker"]


@pytest.fixture(autouse=True)
def fresh_config_memos():
    """Configuration memoised by an earlier test (care/core/memo.py) must not leak into this one."""
    from care.core.memo import clear_all_memos

    clear_all_memos()
    yield
    clear_all_memos()


@pytest.fixture(autouse=True)
def live_prefix(settings):
    """Every test gets its own channel-layer prefix: its groups, live sequences and logs in Redis are
    its own (several test runs may share this machine's Redis), and are deleted afterwards."""
    from channels.layers import channel_layers

    from care.realtime import log

    prefix = f"care-test-{uuid.uuid4().hex[:12]}"
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"].setdefault("CONFIG", {})["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    yield prefix
    channel_layers.backends.clear()
    client = log.client()
    leftovers = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if leftovers:
        client.delete(*leftovers)


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Energie Nord", slug="energie-nord", code="ENN", time_zone="Europe/Berlin")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(
        name="Telco Sur",
        slug="telco-sur",
        code="TSU",
        time_zone="Europe/Madrid",
        default_language="es",
        supported_languages=["es", "en"],
        holiday_country="ES",
    )


@pytest.fixture
def agent(tenant_a):
    return make_agent(tenants=[tenant_a], email="alice@care.test")


@pytest.fixture
def supervisor(tenant_a):
    return make_agent(tenants=[tenant_a], email="sam@care.test", role=Role.SUPERVISOR, is_staff=True)


@pytest.fixture
def outsider(tenant_b):
    return make_agent(tenants=[tenant_b], email="oscar@care.test", languages=(("es", 7),))


@pytest.fixture
def portal_user(tenant_a):
    return UserFactory(email="portal@energie-nord.test", role=Role.PORTAL, portal_tenant=tenant_a)


@pytest.fixture
def admin_user(db):
    return UserFactory(email="root@care.test", role=Role.ADMIN, is_staff=True, is_superuser=True)


def make_tenant_owned_rows(tenant) -> dict[type, object]:
    """One row of every tenant-owned model for ``tenant`` (its authorisations come from the actors).

    Names and texts carry the tenant's code, so a page that shows another tenant's row is easy to spot.
    """
    code = tenant.code
    # Before the tickets: creating a ticket queues it (routing's receiver) in its matching queue.
    queue = RoutingQueue.objects.create(
        tenant=tenant, name=f"{code} first line", languages=[tenant.default_language]
    )
    RoutingStep.objects.create(queue=queue, after_seconds=0)
    # Before the tickets too: a new ticket starts the clocks of the policy that matches it.
    policy = SlaPolicy.objects.create(
        tenant=tenant,
        name=f"{code} standard",
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=480,
        business_hours=False,
        escalate_to_queue=queue,
    )
    customer = CustomerFactory(tenant=tenant, display_name=f"{code} customer")
    identity = IdentityFactory(customer=customer, value=f"someone@{tenant.slug}.test")
    ticket = make_ticket(tenant=tenant, customer=customer, subject=f"{code} ticket")
    interaction, _ = interaction_add(
        ticket=ticket,
        channel=Channel.EMAIL,
        direction=Direction.INBOUND,
        body_text=f"{code} message",
        author_identity=identity,
    )
    follow_up = make_ticket(tenant=tenant, customer=customer, subject=f"{code} later")
    mailbox = Mailbox.objects.create(
        tenant=tenant, name=f"{code} support", address=f"support@{tenant.slug}.test"
    )
    inbound, _ = inbound_store(
        tenant=tenant,
        channel=Channel.EMAIL,
        provider="email",
        source="cli",
        mailbox=mailbox,
        raw=f"From: someone@{tenant.slug}.test\r\nSubject: {code} raw\r\n\r\n{code} raw body\r\n".encode(),
    )
    reply, _ = interaction_add(
        ticket=ticket, channel=Channel.EMAIL, direction=Direction.OUTBOUND, body_text=f"{code} reply"
    )
    attachment = attachment_store(
        interaction=interaction,
        filename=f"{code}-invoice.pdf",
        content=code.encode(),
        content_type="application/pdf",
    )
    # The ticket's resolution clock past its warning instant, not yet due: one warning, recorded by
    # the SLA engine as its timer would.
    resolution = SlaClock.objects.get(ticket=ticket, target=Target.RESOLUTION)
    sla_fire(clock_ids=[resolution.pk], now=resolution.warn_at + dt.timedelta(seconds=1))
    return {
        Tenant: tenant,
        Customer: customer,
        Identity: identity,
        Ticket: ticket,
        Interaction: interaction,
        Attachment: attachment,
        TicketEvent: ticket.events.get(),
        TicketLink: ticket_link(source=follow_up, target=ticket, kind=TicketLink.Kind.FOLLOW_UP, actor=None),
        Mailbox: mailbox,
        InboundMessage: inbound,
        OutboundDelivery: OutboundDelivery.objects.create(
            tenant=tenant,
            interaction=reply,
            channel=Channel.EMAIL,
            mailbox=mailbox,
            recipient=f"someone@{tenant.slug}.test",
        ),
        Skill: Skill.objects.create(tenant=tenant, code=f"{code.lower()}-tariffs", name=f"{code} tariffs"),
        Guideline: Guideline.objects.create(tenant=tenant, title=f"{code} greeting", body="Hello"),
        TenantHoliday: TenantHoliday.objects.create(
            tenant=tenant, date=dt.date(2026, 12, 31), name=f"{code} party"
        ),
        ServiceHours: ServiceHours.objects.create(
            tenant=tenant, weekday=0, opens_at=dt.time(8), closes_at=dt.time(18)
        ),
        RoutingQueue: queue,
        QueuedItem: QueuedItem.objects.get(ticket=ticket),
        RoutingDecision: RoutingDecision.objects.create(
            tenant=tenant,
            ticket=ticket,
            kind=RoutingDecision.Kind.WAITING,
            queue_name=queue.name,
            step=str(queue.steps.get()),
            reason=f"{code} nobody free",
            candidates=[{"agent": 0, "name": f"{code} candidate", "rejected": ["is offline"]}],
        ),
        SlaPolicy: policy,
        SlaClock: resolution,
        SlaEvent: SlaEvent.objects.get(clock=resolution),
        **_phone_rows(tenant, customer, ticket, interaction),
        **_social_rows(tenant, identity, ticket),
        **_composer_rows(tenant, ticket, interaction),
    }


def _composer_rows(tenant, ticket, interaction) -> dict[type, object]:
    """The reply composer's rows of ``tenant``: a macro, and a mention (of a user of its own)."""
    from care.macros.models import Macro
    from care.mentions.models import Mention

    mentioned = UserFactory(email=f"mentioned@{tenant.slug}.test")
    return {
        Macro: Macro.objects.create(tenant=tenant, title=f"{tenant.code} thanks", body="Thank you."),
        Mention: Mention.objects.create(
            tenant=tenant, interaction=interaction, ticket=ticket, mentioned=mentioned
        ),
    }


def _social_rows(tenant, identity, ticket) -> dict[type, object]:
    """The social channel's rows of ``tenant``: an account and a customer's conversation with it."""
    from care.connectors.models import SocialAccount, SocialConversation

    account = SocialAccount.objects.create(
        tenant=tenant, platform="other", name=f"{tenant.code} web chat", account_id=f"{tenant.code}-chat"
    )
    conversation = SocialConversation.objects.create(
        tenant=tenant, account=account, identity=identity, sender_id=f"{tenant.code}-sender", ticket=ticket
    )
    return {SocialAccount: account, SocialConversation: conversation}


def _phone_rows(tenant, customer, ticket, interaction) -> dict[type, object]:
    """The phone channel's rows of ``tenant``: a line, a coded call on the ticket, a campaign, a target."""
    code = tenant.code
    digits = f"{tenant.pk:04d}"
    line = PhoneLine.objects.create(
        tenant=tenant,
        number=f"+49301234{digits}",
        name=f"{code} hotline",
        provider="generic",
        default_language=tenant.default_language,
    )
    reason = CallCode.objects.create(
        tenant=tenant, kind="reason", code=f"{code.lower()}-billing", label=f"{code} billing"
    )
    campaign = Campaign.objects.create(tenant=tenant, name=f"{code} winter campaign")
    call = Call.objects.create(
        tenant=tenant,
        line=line,
        direction="inbound",
        provider="generic",
        external_id=f"{code}-call-1",
        caller=f"+49401234{digits}",
        dialled=line.number,
        customer=customer,
        status="ended",
        outcome="answered",
        offered_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC),
        answered_at=dt.datetime(2026, 11, 2, 9, 0, 30, tzinfo=dt.UTC),
        ended_at=dt.datetime(2026, 11, 2, 9, 5, tzinfo=dt.UTC),
        queue_wait_seconds=30,
        talk_seconds=270,
        ticket=ticket,
        reason=reason,
        campaign=campaign,
    )
    return {
        PhoneLine: line,
        Call: call,
        CallCode: reason,
        Campaign: campaign,
        ServiceLevelTarget: ServiceLevelTarget.objects.create(tenant=tenant),
    }


@pytest.fixture
def media_root(settings, tmp_path):
    """Stored files (attachments) go to a temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def tenant_rows(tenant_a, tenant_b, agent, supervisor, outsider, media_root):
    """A row of every tenant-owned model in A and in B, keyed ``{model: {tenant_id: row}}``.

    The agent and the supervisor are authorised for A, the outsider for B: those are the
    TenantAuthorisation rows of each tenant.
    """
    rows: dict[type, dict[int, object]] = {}
    for tenant in (tenant_a, tenant_b):
        for model, row in make_tenant_owned_rows(tenant).items():
            rows.setdefault(model, {})[tenant.pk] = row
    rows[TenantAuthorisation] = {
        tenant_a.pk: agent.authorisations.get(tenant=tenant_a),
        tenant_b.pk: outsider.authorisations.get(tenant=tenant_b),
    }
    return rows


@pytest.fixture(autouse=True)
def static_files_without_manifest(settings):
    """Tests run with DEBUG off, like production, but without `collectstatic`: serve static files
    from the apps instead of the manifest that only collectstatic writes."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash passwords cheaply: the real hasher costs about a second per user on a busy machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def admin_form_data(response, **overrides):
    """The POST data an admin add or change page would send back untouched, then ``overrides``.

    Covers the main form and every inline formset (management forms included); an override of
    ``None`` leaves that field out.
    """
    from django.forms import MultiWidget

    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for name, field in form.fields.items():
            bound = form[name]
            if isinstance(field.widget, MultiWidget):
                for sub in bound.subwidgets[0].data["subwidgets"]:
                    data[sub["name"]] = sub["value"] or ""
                continue
            value = bound.value()
            if value is None or value is False:
                continue
            data[bound.html_name] = "on" if value is True else value
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def admin_post_data():
    """``admin_form_data`` as a fixture, for test modules that build admin POSTs."""
    return admin_form_data
