"""The desk's ticket fixtures, for notes with mentions."""

from tests.desk.conftest import email_ticket, phone_ticket  # noqa: F401 - fixtures
