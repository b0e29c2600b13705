"""The data of the ``sla_sweep`` benchmark: SLA clocks on the shared dataset's tickets, built at the
start of the run and deleted at the end (the dataset's tickets are read, never changed).

- one inactive policy per dataset tenant, ``SLA bench`` (first response within 8 hours, round the
  clock, warning at 75 %); inactive, so that no ticket made by another benchmark picks it;
- one running first-response clock per ticket, open or not (1,000,000 at full size): what the
  sweep's partial index ``sla_clock_due`` has to look through. 1 % of them (ticket id divisible by
  100) are overdue by up to an hour, warned (``warned_at`` set, as their timers would have done) and
  not yet breached; the others are due between 3 and 11 hours from now, so none comes due or reaches
  its warning (2 hours before) while the benchmark runs: what there is to fire is exactly the
  overdue clocks' breaches;
- one earlier breach event per clock (30 days ago, actions done): the history the sweep's
  "actions whose task was lost" query (``actions_done_at IS NULL``) has to look through.

Clocks and events are one ``INSERT … SELECT`` each from the tickets, in one transaction, followed by
``VACUUM (ANALYZE)``. ``reset`` undoes what a sweep did (the round's events deleted, the overdue
clocks unbreached); ``clear`` deletes every row of the benchmark.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction

from bench.harness import log

POLICY_NAME = "SLA bench"
BUDGET = dt.timedelta(hours=8)
WARN_BEFORE_DUE = dt.timedelta(hours=2)  # 75 % of 8 hours
OVERDUE_MODULUS = 100  # tickets whose id is divisible by it are overdue: 1 %
# The other clocks are due from 3 hours ahead: none comes due, or reaches its warning (2 hours before
# the due time), while the benchmark runs; the only work is the overdue clocks' breaches.
NOT_DUE_BEFORE = dt.timedelta(hours=3)


@dataclass(frozen=True)
class Built:
    policy_ids: list[int]
    clocks: int
    overdue_ids: list[int]
    history: int
    seconds: float


_POLICIES_SQL = """
INSERT INTO sla_slapolicy (
    created_at, updated_at, tenant_id, name, position, priority, channel, first_response_minutes,
    next_response_minutes, resolution_minutes, business_hours, warning_percent,
    raise_priority_on_breach, is_active, escalate_to_queue_id
)
SELECT now(), now(), t.id, %(name)s, 0, NULL, '', %(minutes)s, %(minutes)s, NULL, false, 75, false, false,
    NULL
FROM unnest(%(tenant_ids)s::bigint[]) AS t(id)
RETURNING id
"""

# due: overdue clocks 1 s to 1 h ago; the others 1 min to 8 h ahead, spread by a hash of the id.
_CLOCKS_SQL = """
INSERT INTO sla_slaclock (
    created_at, updated_at, tenant_id, ticket_id, policy_id, target, state, budget_seconds,
    business_hours, started_at, elapsed_seconds, resumed_at, due_at, warn_at, paused_at, met_at,
    stopped_at, warned_at, breached_at
)
SELECT d.started_at, d.started_at, d.tenant_id, d.ticket_id, d.policy_id, 'first_response', 'running',
    %(budget_seconds)s, false, d.started_at, 0, d.started_at, d.due_at, d.warn_at, NULL, NULL, NULL,
    CASE WHEN d.warn_at <= %(now)s THEN d.warn_at END, NULL
FROM (
    SELECT c.*, c.due_at - %(budget_seconds)s * interval '1 second' AS started_at,
        c.due_at - %(warn_before_seconds)s * interval '1 second' AS warn_at
    FROM (
        SELECT t.tenant_id, t.id AS ticket_id, p.id AS policy_id,
            CASE WHEN t.id %% %(modulus)s = 0
                 THEN %(now)s - (1 + (t.id / %(modulus)s) %% 3600) * interval '1 second'
                 ELSE %(now)s + (%(ahead_seconds)s + (t.id * 7919) %% 28800) * interval '1 second'
            END AS due_at
        FROM tickets_ticket t
        JOIN sla_slapolicy p ON p.tenant_id = t.tenant_id AND p.id = ANY(%(policy_ids)s)
    ) AS c
) AS d
ORDER BY d.ticket_id
"""

_HISTORY_SQL = """
INSERT INTO sla_slaevent (
    created_at, updated_at, tenant_id, ticket_id, clock_id, target, kind, due_at, actions, actions_done_at
)
SELECT c.due_at - interval '30 days', c.due_at - interval '30 days', c.tenant_id, c.ticket_id, c.id,
    c.target, 'breach', c.due_at - interval '30 days', '["notified the assignee and the supervisors"]',
    c.due_at - interval '30 days'
FROM sla_slaclock c WHERE c.policy_id = ANY(%(policy_ids)s)
ORDER BY c.id
"""


def build(tenant_ids: Sequence[int]) -> Built:
    """Policies, clocks and history for the dataset's tenants (see the module's docstring)."""
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            _POLICIES_SQL,
            {
                "name": POLICY_NAME,
                "minutes": int(BUDGET.total_seconds() // 60),
                "tenant_ids": list(tenant_ids),
            },
        )
        policy_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            _CLOCKS_SQL,
            {
                "budget_seconds": int(BUDGET.total_seconds()),
                "warn_before_seconds": int(WARN_BEFORE_DUE.total_seconds()),
                "now": now,
                "modulus": OVERDUE_MODULUS,
                "ahead_seconds": int(NOT_DUE_BEFORE.total_seconds()),
                "policy_ids": policy_ids,
            },
        )
        clocks = cursor.rowcount
        log(f"sla_sweep: {clocks:,} clocks in {time.monotonic() - started:.1f} s")
        cursor.execute(_HISTORY_SQL, {"policy_ids": policy_ids})
        history = cursor.rowcount
        log(f"sla_sweep: {history:,} earlier events, {time.monotonic() - started:.1f} s so far")
    with connection.cursor() as cursor:
        for table in ("sla_slaclock", "sla_slaevent"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        cursor.execute(
            "SELECT id FROM sla_slaclock WHERE policy_id = ANY(%s) AND state = 'running' "
            "AND breached_at IS NULL AND due_at <= %s ORDER BY id",
            [policy_ids, now],
        )
        overdue_ids = [row[0] for row in cursor.fetchall()]
    return Built(
        policy_ids=policy_ids,
        clocks=clocks,
        overdue_ids=overdue_ids,
        history=history,
        seconds=time.monotonic() - started,
    )


def reset(built: Built) -> None:
    """As before any sweep: the benchmark's new events deleted, its clocks unbreached and unwarned as
    built, the clocks the lag variant added deleted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM sla_slaevent e USING sla_slaclock c "
            "WHERE e.clock_id = c.id AND c.policy_id = ANY(%s) AND e.created_at > c.started_at",
            [built.policy_ids],
        )
        cursor.execute(
            "DELETE FROM sla_slaclock WHERE policy_id = ANY(%s) AND target <> 'first_response'",
            [built.policy_ids],
        )
        cursor.execute(
            "UPDATE sla_slaclock SET breached_at = NULL WHERE id = ANY(%s) AND breached_at IS NOT NULL",
            [built.overdue_ids],
        )


def actions_done(built: Built) -> None:
    """Mark the benchmark's new events' actions done, as the worker's ``apply_actions`` would have
    (no worker runs here): the sweep would otherwise send them again after a minute."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sla_slaevent e SET actions_done_at = now() FROM sla_slaclock c "
            "WHERE e.clock_id = c.id AND c.policy_id = ANY(%s) AND e.actions_done_at IS NULL",
            [built.policy_ids],
        )


def clear(tenant_ids: Sequence[int]) -> None:
    """Delete every row of this benchmark (its policies, their clocks and events).

    When the benchmark's are the only SLA clocks in the database, the two tables are truncated (a
    million rows deleted one by one take a minute); the tables are locked first, so nobody adds a
    row between the check and the truncation.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM sla_slapolicy WHERE name = %s AND tenant_id = ANY(%s)",
            [POLICY_NAME, list(tenant_ids)],
        )
        policy_ids = [row[0] for row in cursor.fetchall()]
        if not policy_ids:
            return
        started = time.monotonic()
        cursor.execute("LOCK TABLE sla_slaevent, sla_slaclock IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM sla_slaclock WHERE NOT (policy_id = ANY(%s)))", [policy_ids]
        )
        (others,) = cursor.fetchone()
        if others:
            cursor.execute(
                "DELETE FROM sla_slaevent WHERE clock_id IN "
                "(SELECT id FROM sla_slaclock WHERE policy_id = ANY(%s))",
                [policy_ids],
            )
            cursor.execute("DELETE FROM sla_slaclock WHERE policy_id = ANY(%s)", [policy_ids])
        else:
            cursor.execute("TRUNCATE sla_slaevent, sla_slaclock")
        cursor.execute("DELETE FROM sla_slapolicy WHERE id = ANY(%s)", [policy_ids])
        log(
            f"sla_sweep: cleared {len(policy_ids)} policies and their clocks "
            f"({'deleted' if others else 'truncated'}) in {time.monotonic() - started:.1f} s"
        )
