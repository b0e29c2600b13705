"""The demo's social inboxes (care/demo/social.py): this morning's messages through the real pipeline.

Counted by hand from ``MESSAGES``: SWN's WhatsApp has two senders (Lena twice, Murat once), SWN's
Facebook page one (Jonas), TeleSol's WhatsApp one (Carmen twice): four tickets, six interactions.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from care.connectors.models import SocialAccount, SocialConversation
from care.core.channels import Channel
from care.demo.build import seed_demo_social
from care.tickets.models import Interaction, Ticket

pytestmark = pytest.mark.django_db

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
def test_the_demo_conversations_become_tickets_once(django_capture_on_commit_callbacks):
    now = timezone.now()
    accounts = seed_demo_social(now=now)
    assert sorted((a.tenant.code, a.platform) for a in accounts.values()) == [
        ("SWN", "messenger"),
        ("SWN", "whatsapp"),
        ("TSOL", "whatsapp"),
    ]
    tickets = Ticket.objects.filter(channel=Channel.SOCIAL)
    per_ticket = sorted(
        (t.tenant.code, t.customer.display_name, t.interactions.count())
        for t in tickets.select_related("tenant", "customer")
    )
    assert per_ticket == [
        ("SWN", "", 1),  # Messenger sends no names (a Graph API profile lookup would: not built)
        ("SWN", "Lena Vogt", 2),
        ("SWN", "Murat Kaya", 1),
        ("TSOL", "Carmen Ruiz", 2),
    ]
    assert SocialConversation.objects.count() == 4

    seed_demo_social(now=now)  # the same morning again: recognised, nothing added
    assert (Ticket.objects.filter(channel=Channel.SOCIAL).count(), Interaction.objects.count()) == (4, 6)
    # Secrets are stored encrypted and read back in clear.
    account = SocialAccount.objects.get(account_id="104940808001")
    assert account.app_secret == "demo-app-secret"
    with connection.cursor() as cursor:
        cursor.execute("SELECT app_secret FROM connectors_socialaccount WHERE id = %s", [account.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:")
    assert "demo-app-secret" not in stored
