"""The websocket stack end to end: ASGI router, origin check, session auth and the ping consumer.

pytest-asyncio is not a dependency: each test is synchronous and runs its async conversation with
``async_to_sync``. The tests are transactional because the session middleware reads the session
from the database in a thread of its own.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from tests.factories.accounts import PASSWORD

# The test runner adds "testserver" to ALLOWED_HOSTS; the origin check reads the setting per connection.
ALLOWED_ORIGIN = (b"origin", b"http://testserver")


def _session_cookie(email):
    client = Client()
    assert client.login(email=email, password=PASSWORD)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def _converse(headers, messages=()):
    """Connect to /ws/ping/, send ``messages`` and collect the answers; returns (connected, answers)."""

    async def conversation():
        communicator = WebsocketCommunicator(application, "/ws/ping/", headers=list(headers))
        connected, detail = await communicator.connect(timeout=5)
        answers = []
        if connected:
            for message in messages:
                await communicator.send_json_to(message)
                answers.append(await communicator.receive_json_from(timeout=5))
            await communicator.disconnect()
        return connected, detail, answers

    return async_to_sync(conversation)()


@pytest.mark.django_db(transaction=True)
def test_anonymous_connection_is_refused():
    connected, close_code, _ = _converse([ALLOWED_ORIGIN])
    assert connected is False
    assert close_code == 4401


@pytest.mark.django_db(transaction=True)
def test_a_forged_session_cookie_is_anonymous():
    connected, close_code, _ = _converse([ALLOWED_ORIGIN, (b"cookie", b"sessionid=not-a-session")])
    assert connected is False
    assert close_code == 4401


@pytest.mark.django_db(transaction=True)
def test_logged_in_user_gets_pong_with_their_email(agent):
    connected, _, answers = _converse([ALLOWED_ORIGIN, _session_cookie(agent.user.email)], [{"type": "ping"}])

    assert connected is True
    assert answers == [{"type": "pong", "user": "alice@care.test"}]


@pytest.mark.django_db(transaction=True)
def test_unknown_message_gets_an_error(agent):
    connected, _, answers = _converse(
        [ALLOWED_ORIGIN, _session_cookie(agent.user.email)],
        [{"type": "subscribe", "group": "tenant-1"}, ["ping"], {"type": "ping"}],
    )

    assert connected is True
    error = {"type": "error", "message": 'Unknown message; send {"type": "ping"}.'}
    assert answers == [error, error, {"type": "pong", "user": "alice@care.test"}]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", [None, b"https://evil.example"])
def test_connection_from_a_foreign_or_missing_origin_is_refused(agent, origin):
    headers = [_session_cookie(agent.user.email)]
    if origin is not None:
        headers.append((b"origin", origin))

    connected, _, _ = _converse(headers)

    assert connected is False


@pytest.mark.django_db(transaction=True)
def test_deactivated_user_is_refused(agent):
    cookie = _session_cookie(agent.user.email)
    type(agent.user).objects.filter(pk=agent.user.pk).update(is_active=False)

    connected, close_code, _ = _converse([ALLOWED_ORIGIN, cookie])

    assert connected is False
    assert close_code == 4401
