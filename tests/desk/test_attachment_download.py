"""Downloading an attachment from the desk: only for staff who see its tenant, always as a download
with a safe name, never sniffed or rendered as one of our pages."""

from __future__ import annotations

import pytest

from care.desk.attachments import attachment_url, safe_content_type, safe_filename
from care.tickets.models import Direction, Interaction
from care.tickets.services import attachment_store
from tests.desk.conftest import page_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def attachment(email_ticket, media_root):
    message = Interaction.objects.get(ticket=email_ticket, direction=Direction.INBOUND)
    return attachment_store(
        interaction=message,
        filename="Zählerfoto 2026.pdf",
        content=b"%PDF-1.4 meter",
        content_type="application/pdf",
    )


def test_agent_downloads_the_file_as_an_attachment(client, agent, attachment):
    client.force_login(agent.user)

    response = client.get(attachment_url(attachment))

    assert response.status_code == 200
    assert response.streaming  # a FileResponse, not read into memory
    assert b"".join(response.streaming_content) == b"%PDF-1.4 meter"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''Z%C3%A4hlerfoto%202026.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_the_name_in_the_address_does_not_matter_the_id_decides(client, agent, attachment):
    client.force_login(agent.user)

    response = client.get(f"/desk/attachments/{attachment.pk}/other.exe")

    assert response.status_code == 200
    assert "Z%C3%A4hlerfoto%202026.pdf" in response["Content-Disposition"]


def test_html_is_downloaded_not_rendered(client, agent, email_ticket, media_root):
    message = Interaction.objects.get(ticket=email_ticket, direction=Direction.INBOUND)
    page = attachment_store(
        interaction=message,
        filename='<script>"x".html',
        content=b"<script>alert(1)</script>",
        content_type="text/html; charset=utf-8",
    )
    client.force_login(agent.user)

    response = client.get(attachment_url(page))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert '"' not in response["Content-Disposition"].split("filename=", 1)[1].strip('"')
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_another_tenants_agent_gets_404(client, outsider, attachment):
    client.force_login(outsider.user)

    assert client.get(attachment_url(attachment)).status_code == 404


def test_a_portal_user_gets_403(client, portal_user, attachment):
    client.force_login(portal_user)

    assert client.get(attachment_url(attachment)).status_code == 403


def test_anonymous_is_sent_to_log_in(client, attachment):
    response = client.get(attachment_url(attachment))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_unknown_attachment_and_missing_file_are_404(client, agent, attachment):
    client.force_login(agent.user)
    assert client.get(f"/desk/attachments/{attachment.pk + 1000}/x.pdf").status_code == 404

    attachment.file.storage.delete(attachment.file.name)

    assert client.get(attachment_url(attachment)).status_code == 404


def test_the_admin_may_download_any_tenants_attachment(client, admin_user, attachment):
    client.force_login(admin_user)

    assert client.get(attachment_url(attachment)).status_code == 200


def test_download_queries_are_pinned(client, agent, attachment, django_assert_num_queries):
    client.force_login(agent.user)
    # session, user, the user's tenants, the attachment
    with django_assert_num_queries(4):
        assert client.get(attachment_url(attachment)).status_code == 200


def test_the_ticket_page_links_each_attachment(client, agent, email_ticket, attachment):
    client.force_login(agent.user)

    page = client.get(page_url(email_ticket)).text

    assert f'href="/desk/attachments/{attachment.pk}/Z%C3%A4hlerfoto%202026.pdf" download' in page


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Rechnung.pdf", "Rechnung.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\greta\\foto.jpg", "foto.jpg"),
        ('a"b;c.pdf', "a_b_c.pdf"),
        ("line\r\nbreak.txt", "line__break.txt"),
        ("..", "attachment"),
        ("", "attachment"),
        (".htaccess", "htaccess"),
        ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
    ],
)
def test_safe_filename(name, safe):
    assert safe_filename(name) == safe


def test_safe_content_type():
    assert safe_content_type("image/png") == "image/png"
    assert safe_content_type("Text/HTML; charset=utf-8") == "text/html"
    assert safe_content_type("nonsense") == "application/octet-stream"
    assert safe_content_type("image/png\r\nX-Evil: 1") == "application/octet-stream"
