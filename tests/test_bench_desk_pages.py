"""The ``desk_pages`` benchmark at its smallest size: the data builds (and is reused), every variant
answers 200 with what it should show, and paired variants have the same query count."""

from __future__ import annotations

import json

import pytest

from bench.datagen import ensure_dataset
from bench.desk_data import EXTRA_TENANTS, LONG_ENTRIES, SHORT_ENTRIES, ensure_desk_data
from bench.desk_pages import desk_pages
from bench.harness import RESULT_FIELDS, Context, RunOptions
from care.calls.models import Call
from care.desk.timeline import TIMELINE_WINDOW
from care.tickets.models import Attachment, Interaction, Ticket

TICKETS = 400  # the dataset's smallest shape: 20 tenants, a few actionable tickets each


@pytest.mark.django_db(transaction=True)  # the builders VACUUM, which cannot run in a transaction
def test_desk_pages_benchmark_runs_at_its_smallest_size():
    dataset = ensure_dataset(tickets=TICKETS)
    context = Context(options=RunOptions(quick=True, iterations=2, warmup=1), dataset=dataset)

    lines = [json.loads(result.to_json()) for result in desk_pages(context)]

    by_name = {line["name"].removeprefix("desk_pages."): line for line in lines}
    assert {"queue_agent", "queue_supervisor", "queue_admin", "ticket_200", "ticket_20"} <= set(by_name)
    for line in lines:
        assert list(line)[: len(RESULT_FIELDS)] == list(RESULT_FIELDS)
        assert line["n"] == 2
        assert line["queries"] > 0
        assert line.get("constant", True) is True, line["name"]
    assert by_name["queue_agent"]["returned"] > 0
    assert by_name["queue_admin"]["tenants"] == len(dataset.tenants) + EXTRA_TENANTS
    # The page opens with the newest TIMELINE_WINDOW interactions; the whole timeline on request.
    assert by_name["ticket_200"]["entries"] == TIMELINE_WINDOW
    assert by_name["ticket_200_whole"]["entries"] == LONG_ENTRIES
    assert by_name["ticket_200_earlier"]["entries"] == TIMELINE_WINDOW
    assert by_name["ticket_20"]["entries"] == SHORT_ENTRIES
    assert by_name["ticket_20"]["queries"] == by_name["ticket_200"]["queries"]

    # The show-case ticket has every kind of entry; every dataset ticket has one to three.
    data = ensure_desk_data(dataset)
    assert data.reused
    code, number = data.long_ticket.rsplit("-", 1)
    long_ticket = Ticket.objects.get(tenant__code=code, number=int(number))
    assert Interaction.objects.filter(ticket=long_ticket).count() == LONG_ENTRIES
    assert Attachment.objects.filter(interaction__ticket=long_ticket).exists()
    assert Call.objects.filter(ticket=long_ticket).exclude(recording_url="").exists()
    assert {"inbound", "outbound", "note"} <= set(
        Interaction.objects.filter(ticket=long_ticket).values_list("direction", flat=True)
    )
    assert not Ticket.objects.filter(interactions__isnull=True).exists()
