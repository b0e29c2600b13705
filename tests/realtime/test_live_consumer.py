"""The live websocket (/ws/live/, docs/realtime.md): who may connect and subscribe to what, ordered
delivery with catch-up after a reconnect, per-event tenant checks, and the viewers of a ticket."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from care.accounts.services import agent_deauthorise
from care.realtime import log, streams
from care.realtime.publish import publish_now
from tests.factories.accounts import make_agent
from tests.factories.tickets import make_ticket
from tests.realtime.live_client import LiveClient, session_headers

pytestmark = pytest.mark.django_db(transaction=True)


def run(conversation):
    return async_to_sync(conversation)()


async def publish(stream: str, tenant_id: int, **data) -> str:
    return await sync_to_async(publish_now)(
        event_type="ticket.updated", tenant_id=tenant_id, data=data, streams=[stream]
    )


def test_anonymous_and_portal_users_are_refused(portal_user):
    async def conversation():
        anonymous = LiveClient([(b"origin", b"http://testserver")])
        portal = LiveClient(headers)
        return await anonymous.connect(), await portal.connect()

    headers = session_headers(portal_user)
    anonymous, portal = run(conversation)
    assert anonymous == (False, 4401)
    assert portal == (False, 4403)


def test_welcome_names_the_agent_stream(agent):
    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        await client.close()
        return client.welcome

    headers = session_headers(agent.user)
    welcome = run(conversation)
    assert welcome == {
        "type": "welcome",
        "v": 1,
        "user": {"id": agent.user.pk, "name": agent.user.get_full_name()},
        "agent": agent.pk,
        "streams": {"agent": f"agent:{agent.pk}"},
        "heartbeat_seconds": 20,
    }


def test_subscriptions_follow_tenant_access(agent, outsider, supervisor, admin_user, tenant_a, tenant_b):
    mine = make_ticket(tenant=tenant_a)
    theirs = make_ticket(tenant=tenant_b)

    async def answers(headers, stream_names):
        client = LiveClient(headers)
        await client.connect()
        result = {name: (await client.subscribe(name))[-1]["type"] for name in stream_names}
        await client.close()
        return result

    wanted = [
        f"agent:{agent.pk}",
        f"agent:{outsider.pk}",
        f"tenant:{tenant_a.pk}",
        f"tenant:{tenant_b.pk}",
        f"ticket:{mine.pk}",
        f"ticket:{theirs.pk}",
        "ticket:999999",
        f"wallboard:{tenant_a.pk}",
        f"wallboard:{tenant_b.pk}",
    ]
    agent_headers, supervisor_headers, admin_headers = (
        session_headers(agent.user),
        session_headers(supervisor.user),
        session_headers(admin_user),
    )

    as_agent = async_to_sync(answers)(agent_headers, wanted)
    as_supervisor = async_to_sync(answers)(supervisor_headers, wanted)
    as_admin = async_to_sync(answers)(admin_headers, wanted)

    subscribed = {name for name, answer in as_agent.items() if answer == "subscribed"}
    assert subscribed == {f"agent:{agent.pk}", f"tenant:{tenant_a.pk}", f"ticket:{mine.pk}"}
    subscribed = {name for name, answer in as_supervisor.items() if answer == "subscribed"}
    assert subscribed == {
        f"tenant:{tenant_a.pk}",
        f"ticket:{mine.pk}",
        f"wallboard:{tenant_a.pk}",
    }
    subscribed = {name for name, answer in as_admin.items() if answer == "subscribed"}
    assert subscribed == {
        f"tenant:{tenant_a.pk}",
        f"tenant:{tenant_b.pk}",
        f"ticket:{mine.pk}",
        f"ticket:{theirs.pk}",
        f"wallboard:{tenant_a.pk}",
        f"wallboard:{tenant_b.pk}",
    }


def test_refusal_does_not_tell_whether_the_ticket_exists(agent, tenant_b):
    theirs = make_ticket(tenant=tenant_b)

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        foreign = (await client.subscribe(f"ticket:{theirs.pk}"))[-1]
        missing = (await client.subscribe("ticket:987654"))[-1]
        await client.close()
        return foreign, missing

    headers = session_headers(agent.user)
    foreign, missing = run(conversation)
    assert foreign["type"] == missing["type"] == "refused"
    assert foreign["message"] == missing["message"]


def test_events_arrive_in_order_with_their_envelope(agent, tenant_a):
    ticket = make_ticket(tenant=tenant_a)
    stream = streams.ticket_stream(ticket.pk)
    before = log.current(stream)  # the ticket's own creation was published

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        subscribed = (await client.subscribe(stream))[-1]
        await client.receive_type("ticket.viewers")
        ids = [await publish(stream, tenant_a.pk, n=n) for n in range(3)]
        received = [await client.receive_type("ticket.updated") for _ in range(3)]
        await client.close()
        return subscribed, ids, received

    headers = session_headers(agent.user)
    subscribed, ids, received = run(conversation)
    assert subscribed == {"type": "subscribed", "stream": stream, "seq": before, "replayed": 0}
    assert [event["seq"] for event in received] == [before + 1, before + 2, before + 3]
    assert [event["id"] for event in received] == ids
    assert [event["data"] for event in received] == [{"n": 0}, {"n": 1}, {"n": 2}]
    first = received[0]
    assert set(first) == {"v", "id", "type", "stream", "seq", "at", "tenant", "data"}
    assert (first["v"], first["stream"], first["tenant"]) == (1, stream, tenant_a.pk)


def test_a_reconnecting_client_gets_what_it_missed(agent, tenant_a):
    stream = streams.tenant_stream(tenant_a.pk)

    async def conversation():
        first = LiveClient(headers)
        await first.connect()
        await first.subscribe(stream)
        await publish(stream, tenant_a.pk, n=1)
        seen = (await first.receive_type("ticket.updated"))["seq"]
        await first.close()
        for n in (2, 3):  # while disconnected
            await publish(stream, tenant_a.pk, n=n)
        second = LiveClient(headers)
        await second.connect()
        messages = await second.subscribe(stream, since=seen)
        await publish(stream, tenant_a.pk, n=4)
        live = await second.receive_type("ticket.updated")
        await second.close()
        return seen, messages, live

    headers = session_headers(agent.user)
    seen, messages, live = run(conversation)
    assert seen == 1
    assert [(m["seq"], m["data"]) for m in messages[:-1]] == [(2, {"n": 2}), (3, {"n": 3})]
    assert messages[-1] == {"type": "subscribed", "stream": stream, "seq": 3, "replayed": 2}
    assert (live["seq"], live["data"]) == (4, {"n": 4})


def test_too_much_missed_or_a_reset_log_means_reload(agent, tenant_a, settings):
    settings.LIVE_LOG_LENGTH = 2
    stream = streams.tenant_stream(tenant_a.pk)
    for n in range(5):
        publish_now(event_type="ticket.updated", tenant_id=tenant_a.pk, data={"n": n}, streams=[stream])

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        old = await client.subscribe(stream, since=1)
        await client.send({"type": "unsubscribe", "stream": stream})
        future = await client.subscribe(stream, since=50)  # the client saw more than exists: a reset
        await client.send({"type": "unsubscribe", "stream": stream})
        recent = await client.subscribe(stream, since=3)
        await client.close()
        return old, future, recent

    headers = session_headers(agent.user)
    old, future, recent = run(conversation)
    assert [m["type"] for m in old] == ["reload", "subscribed"]
    assert [m["type"] for m in future] == ["reload", "subscribed"]
    assert [m.get("seq") for m in recent] == [4, 5, 5]
    assert recent[-1]["replayed"] == 2


def test_a_gap_is_filled_from_the_log_and_duplicates_are_dropped(agent, tenant_a):
    stream = streams.tenant_stream(tenant_a.pk)

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        await client.subscribe(stream)
        # An event logged but whose group message has not arrived yet (a slower publisher) ...
        await sync_to_async(log.append)(
            stream,
            {
                "v": 1,
                "id": "slow",
                "type": "ticket.updated",
                "stream": stream,
                "at": "",
                "tenant": tenant_a.pk,
                "data": {"n": "slow"},
            },
        )
        await publish(stream, tenant_a.pk, n="fast")
        first, second = await client.receive(), await client.receive()
        # ... which then arrives late: it was already forwarded, so it is dropped.
        late = dict(first)
        await get_channel_layer().group_send(
            streams.group_name(stream), {"type": "live.event", "event": late}
        )
        nothing = await client.nothing_more()
        await client.close()
        return first, second, nothing

    headers = session_headers(agent.user)
    first, second, nothing = run(conversation)
    assert [(first["seq"], first["id"]), (second["seq"], second["data"])] == [(1, "slow"), (2, {"n": "fast"})]
    assert nothing is True


def test_events_of_tenants_the_user_cannot_see_are_never_forwarded(agent, tenant_a, tenant_b, monkeypatch):
    monkeypatch.setattr(streams, "ACCESS_SECONDS", 0)  # re-read access on every message
    own = streams.agent_stream(agent.pk)
    tenant_stream = streams.tenant_stream(tenant_a.pk)

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        await client.subscribe(own)
        await client.subscribe(tenant_stream)
        # An event of another tenant on the agent's own stream (a stale assignment, say) is dropped.
        await publish(own, tenant_b.pk, n="foreign")
        await publish(own, tenant_a.pk, n="own")
        received = await client.receive()
        # Authorisation withdrawn while connected: tenant A's events stop once access is re-read
        # (ACCESS_SECONDS, 0 here; a message from the client waits for the re-read).
        await sync_to_async(agent_deauthorise)(agent=agent, tenant=tenant_a)
        await client.send({"type": "ping"})
        await client.receive_type("pong")
        await publish(tenant_stream, tenant_a.pk, n="after")
        nothing = await client.nothing_more(0.5)
        await client.close()
        return received, nothing

    headers = session_headers(agent.user)
    received, nothing = run(conversation)
    assert received["data"] == {"n": "own"}
    assert nothing is True


def test_snapshot_streams_send_the_current_board_on_subscribe(supervisor, tenant_a):
    stream = streams.wallboard_stream(tenant_a.pk)
    for waiting in (1, 2, 3):
        publish_now(
            event_type="wallboard.snapshot",
            tenant_id=tenant_a.pk,
            data={"waiting": waiting},
            streams=[stream],
        )

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        messages = await client.subscribe(stream)
        await client.close()
        return messages

    headers = session_headers(supervisor.user)
    messages = run(conversation)
    assert [(m.get("seq"), m.get("data")) for m in messages] == [(3, {"waiting": 3}), (3, None)]
    assert messages[-1]["replayed"] == 1


def test_viewers_and_typing_are_shown_to_everyone_on_the_ticket(agent, tenant_a):
    colleague = make_agent(tenants=[tenant_a], email="bob@care.test")
    ticket = make_ticket(tenant=tenant_a)
    stream = streams.ticket_stream(ticket.pk)

    def names(event):
        return [(viewer["name"], viewer["typing"]) for viewer in event["data"]["viewers"]]

    async def conversation():
        alice, bob = LiveClient(alice_headers), LiveClient(bob_headers)
        await alice.connect()
        await alice.subscribe(stream)
        alone = await alice.receive_type("ticket.viewers")
        await bob.connect()
        await bob.subscribe(stream)
        together = await alice.receive_type("ticket.viewers")
        await bob.send({"type": "typing", "stream": stream, "typing": True})
        typing = await alice.receive_type("ticket.viewers")
        await bob.send({"type": "typing", "stream": stream, "typing": True})  # a repeat changes nothing
        await bob.send({"type": "typing", "stream": stream, "typing": False})
        stopped = await alice.receive_type("ticket.viewers")
        await bob.close()
        left = await alice.receive_type("ticket.viewers")
        await alice.close()
        return alone, together, typing, stopped, left

    alice_headers, bob_headers = session_headers(agent.user), session_headers(colleague.user)
    alone, together, typing, stopped, left = run(conversation)
    alice_name, bob_name = agent.user.get_full_name(), colleague.user.get_full_name()
    assert names(alone) == [(alice_name, False)]
    assert sorted(names(together)) == sorted([(alice_name, False), (bob_name, False)])
    assert (bob_name, True) in names(typing)
    assert (bob_name, False) in names(stopped)
    assert names(left) == [(alice_name, False)]
    assert alone["seq"] is None
    assert alone["tenant"] == tenant_a.pk


def test_malformed_messages_get_clear_errors(agent):
    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        answers = []
        await client.communicator.send_to(text_data="not json")
        answers.append(await client.receive())
        for message in (
            ["subscribe"],
            {"type": "shout"},
            {"type": "subscribe", "stream": "ticket:1", "since": -1},
            {"type": "subscribe", "stream": 42},
            {"type": "typing", "stream": "ticket:1", "typing": "yes"},
            {"type": "typing", "stream": "ticket:1", "typing": True},
            {"type": "heartbeat", "idle": "no"},
            {"type": "ping"},
        ):
            await client.send(message)
            answers.append(await client.receive())
        await client.close()
        return answers

    headers = session_headers(agent.user)
    answers = run(conversation)
    assert [answer["type"] for answer in answers] == ["error"] * 8 + ["pong"]
    assert all(answer["message"] for answer in answers[:-1])


def test_heartbeats_over_the_socket_keep_presence_and_idle_sets_away(agent):
    from care.accounts.models import Presence
    from care.accounts.services import agent_set_presence

    agent_set_presence(agent=agent, presence=Presence.ONLINE)

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        await client.send({"type": "heartbeat", "idle": True})
        await client.send({"type": "ping"})  # answered after the heartbeat was handled
        await client.receive_type("pong")
        await client.close()

    headers = session_headers(agent.user)
    run(conversation)
    agent.refresh_from_db()
    assert agent.presence == Presence.AWAY
    assert agent.heartbeat_at is not None


def test_a_typing_notice_that_is_not_renewed_lapses_for_everyone(agent, tenant_a, monkeypatch):
    from care.realtime import viewers

    monkeypatch.setattr(viewers, "TYPING_SECONDS", 0.5)
    colleague = make_agent(tenants=[tenant_a], email="bob@care.test")
    stream = streams.ticket_stream(make_ticket(tenant=tenant_a).pk)

    async def conversation():
        alice, bob = LiveClient(alice_headers), LiveClient(bob_headers)
        await alice.connect()
        await alice.subscribe(stream)
        await bob.connect()
        await bob.subscribe(stream)
        await bob.send({"type": "typing", "stream": stream, "typing": True})  # and then silence
        states = []
        while len(states) < 10:
            event = await alice.receive_type("ticket.viewers", timeout=3)
            bob_entry = [v for v in event["data"]["viewers"] if v["name"] == bob_name]
            states.append(bob_entry[0]["typing"] if bob_entry else None)
            if states[-1] is False and True in states:
                break
        await bob.close()
        await alice.close()
        return states

    alice_headers, bob_headers = session_headers(agent.user), session_headers(colleague.user)
    bob_name = colleague.user.get_full_name()
    states = run(conversation)
    assert states[-2:] == [True, False]


def test_a_heartbeat_delivers_an_event_whose_group_message_was_dropped(agent, tenant_a):
    stream = streams.tenant_stream(tenant_a.pk)

    async def conversation():
        client = LiveClient(headers)
        await client.connect()
        await client.subscribe(stream)
        # Logged, but its group message lost (the channel layer drops messages beyond its capacity).
        await sync_to_async(log.append)(
            stream,
            {
                "v": 1,
                "id": "dropped",
                "type": "queue.stats",
                "stream": stream,
                "at": "",
                "tenant": tenant_a.pk,
                "data": {"waiting": 1},
            },
        )
        quiet = await client.nothing_more(0.3)
        await client.send({"type": "heartbeat", "idle": False})
        recovered = await client.receive()
        await client.close()
        return quiet, recovered

    headers = session_headers(agent.user)
    quiet, recovered = run(conversation)
    assert quiet is True
    assert (recovered["id"], recovered["seq"], recovered["data"]) == ("dropped", 1, {"waiting": 1})
