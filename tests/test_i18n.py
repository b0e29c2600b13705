"""The interface speaks English and German; German comes from locale/de, compiled and committed."""

from __future__ import annotations

import pytest
from django.utils import translation

from care.tickets.status import Status


def test_status_labels_are_translated():
    with translation.override("de"):
        assert str(Status.PENDING.label) == "Wartet auf Kunden"
    with translation.override("en"):
        assert str(Status.PENDING.label) == "Pending (waiting on the customer)"


@pytest.mark.django_db
def test_admin_login_page_follows_the_browser_language(client):
    german = client.get("/admin/login/", headers={"accept-language": "de"})
    english = client.get("/admin/login/", headers={"accept-language": "en"})
    assert "Care-Administration" in german.text
    assert "Care administration" in english.text
