"""Search across the tickets and timelines a user may see (docs/search.md).

What a search does, in this order:

1. A ticket reference (``SWN-1042``) in the user's tenants: that ticket (the page jumps to it).
2. An email address or a phone number (normalised to E.164 with the tenants' regions): the tickets of
   the customers with that identity in the user's tenants.
3. Otherwise full text: the ticket subject and the timeline entries' ``body_text`` (internal notes only
   when ``include_notes``), each indexed in its ticket's language (``care_search_config`` in the
   database, ``SEARCH_CONFIGS`` here), queried in every configuration plus ``simple``, so
   "Rechnung" finds "Rechnungen" in a German ticket and "invoice" finds "invoices" in an English one.

Results are one row per ticket, newest ticket first, ``PAGE_SIZE`` at a time; the next page starts
below the last ticket id shown (keyset, no COUNT, no OFFSET). The id query is tenant first (one part
per tenant for small scopes) and bounded both ways: the newest tickets of each part are checked
directly (a common word fills the page after a few hundred rows), older ones only through the GIN
index on (tenant_id, search_vector) (cheap exactly when the word is rare). Snippets (``ts_headline``)
are computed for the shown page only. Every search is a fixed number of queries, whatever it finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from care.contacts.identities import IdentityKind, normalise_identity, normalise_phone
from care.contacts.models import Identity
from care.core.errors import BusinessRuleViolation
from care.tenants.models import Tenant
from care.tickets.models import Direction, Ticket
from care.tickets.selectors import parse_reference

PAGE_SIZE = 20
MAX_QUERY_LENGTH = 200
# Tickets listed for one customer identity (a jump, not a search: newest first, one page).
SIMPLE_CONFIG = "simple"

# ISO 639-1 → PostgreSQL text-search configuration. The SQL function care_search_config (migration
# tickets 0005) is the same table; tests/test_ticket_search.py checks that they agree.
SEARCH_CONFIGS: dict[str, str] = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hu": "hungarian",
    "it": "italian",
    "nb": "norwegian",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "tr": "turkish",
}

# Markers ts_headline puts around a hit; removed from the text first, so they cannot be forged.
_START, _STOP = "\x02", "\x03"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().\-/]+$")
_MIN_PHONE_DIGITS = 6


def search_config(language: str) -> str:
    """The text-search configuration for an ISO 639-1 code (``de-AT`` counts as ``de``)."""
    return SEARCH_CONFIGS.get((language or "").split("-", 1)[0].lower(), SIMPLE_CONFIG)


def query_configs() -> list[str]:
    """The configurations a query is parsed in: every language's, then ``simple`` (exact words, and
    the tickets in a language without a stemmer), without repeats.

    Every one, not only the scope's tenants' languages: a ticket's language is detected per ticket
    (a German tenant gets English mail), and a query in the wrong configuration misses it ("Zähler"
    is ``zahl`` in German, ``zähler`` elsewhere). The cost is a longer OR of the same few lexemes:
    one GIN entry lookup each (docs/search.md has the numbers)."""
    return [*sorted(set(SEARCH_CONFIGS.values())), SIMPLE_CONFIG]


def clean_query(text: str) -> str:
    """The query as searched: control characters (NUL included) become spaces, whitespace is collapsed.
    Raises BusinessRuleViolation when it is too long to be a search."""
    cleaned = " ".join(_CONTROL.sub(" ", text or "").split())
    if len(cleaned) > MAX_QUERY_LENGTH:
        raise BusinessRuleViolation(
            _("The search is too long: use at most %(max)d characters.") % {"max": MAX_QUERY_LENGTH}
        )
    return cleaned


@dataclass
class SearchHit:
    ticket: Ticket
    subject: SafeString  # the subject, hits marked
    snippet: SafeString  # the best matching entry, hits marked; empty when only the subject matched
    snippet_is_note: bool = False


@dataclass
class SearchResult:
    """``kind``: ``empty`` (nothing to search for), ``reference`` (a ticket by its reference),
    ``identity`` (tickets of the customers with that email/phone), ``text`` (full text)."""

    kind: str
    query: str = ""
    hits: list[SearchHit] = field(default_factory=list)
    next_before: int | None = None
    message: str = ""

    @property
    def jump_to(self) -> Ticket | None:
        """The one ticket a reference named: the page opens it directly."""
        return self.hits[0].ticket if self.kind == "reference" and len(self.hits) == 1 else None


def ticket_search(
    *,
    user: Any,
    query: str,
    tenants: Sequence[Tenant] | None = None,
    tenant_id: int | None = None,
    statuses: Sequence[str] = (),
    include_notes: bool = True,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> SearchResult:
    """Search what ``user`` may see. ``tenants`` (``visible_tenants(user=user)``, if the caller has them
    loaded) only saves a query: each is re-checked with ``user.may_see_tenant``. ``tenant_id`` and
    ``statuses`` narrow it; ``before`` is the keyset of the next page (the last ticket id shown).
    Raises BusinessRuleViolation for a query that is too long."""
    text = clean_query(query)
    if tenants is None:
        tenants = visible_tenants(user=user)
    # The scope is re-checked whatever the caller passed (may_see_tenant is cached per request).
    scope = [t for t in tenants if user.may_see_tenant(t.pk) and (tenant_id is None or t.pk == tenant_id)]
    if not text:
        return SearchResult(kind="empty")
    if not any(char.isalnum() for char in text):
        return SearchResult(
            kind="empty",
            query=text,
            message=_("Enter a word, a ticket reference, an email or a phone number."),
        )
    if not scope:
        return SearchResult(kind="text", query=text)

    found = _by_reference(text, scope, statuses)
    if found is not None:
        return SearchResult(kind="reference", query=text, hits=[_plain_hit(found)])
    customers = _identity_customers(text, scope)
    if customers:
        return _customer_tickets(text, customers, scope, statuses, before, limit)
    # An administrator's unfiltered search needs no tenant condition at all (they see every tenant).
    every_tenant = bool(getattr(user, "sees_all_tenants", False)) and tenant_id is None
    return _full_text(text, scope, statuses, include_notes, before, limit, every_tenant=every_tenant)


def visible_tenants(*, user: Any) -> list[Tenant]:
    """The tenants ``user`` may search, by name (one query)."""
    return list(Tenant.objects.visible_to(user).order_by("name"))


def _plain_hit(ticket: Ticket) -> SearchHit:
    return SearchHit(ticket=ticket, subject=escape(ticket.subject), snippet=mark_safe(""))


def _by_reference(text: str, scope: Sequence[Tenant], statuses: Sequence[str]) -> Ticket | None:
    parsed = parse_reference(text)
    if parsed is None:
        return None
    tenant = next((t for t in scope if t.code.upper() == parsed[0]), None)
    if tenant is None:
        return None
    tickets = Ticket.objects.filter(tenant_id=tenant.pk, number=parsed[1])
    if statuses:
        tickets = tickets.filter(status__in=statuses)
    ticket = tickets.select_related("customer", "assignee__user").first()
    if ticket is not None:
        ticket.tenant = tenant  # the same row, already loaded
    return ticket


def _identity_customers(text: str, scope: Sequence[Tenant]) -> list[int]:
    """Customers in ``scope`` with this email or phone number (empty when ``text`` is neither)."""
    tenant_ids = [t.pk for t in scope]
    if _EMAIL.match(text):
        try:
            value = normalise_identity(IdentityKind.EMAIL, text)
        except ValidationError:
            return []
        kind, values = IdentityKind.EMAIL, {value}
    elif _PHONE.match(text) and sum(char.isdigit() for char in text) >= _MIN_PHONE_DIGITS:
        values = set()
        for region in {None, *(t.holiday_country or None for t in scope)}:
            try:
                values.add(normalise_phone(text, region))
            except ValidationError:
                continue
        if not values:
            return []
        kind = IdentityKind.PHONE
    else:
        return []
    return list(
        Identity.objects.filter(tenant_id__in=tenant_ids, kind=kind, value__in=sorted(values))
        .values_list("customer_id", flat=True)
        .distinct()
    )


def _customer_tickets(
    text: str,
    customer_ids: list[int],
    scope: Sequence[Tenant],
    statuses: Sequence[str],
    before: int | None,
    limit: int,
) -> SearchResult:
    tickets = Ticket.objects.filter(tenant_id__in=[t.pk for t in scope], customer_id__in=customer_ids)
    if statuses:
        tickets = tickets.filter(status__in=statuses)
    if before is not None:
        tickets = tickets.filter(pk__lt=before)
    rows = list(tickets.select_related("customer", "assignee__user").order_by("-pk")[: limit + 1])
    _attach_tenants(rows, scope)
    page = rows[:limit]
    return SearchResult(
        kind="identity",
        query=text,
        hits=[_plain_hit(ticket) for ticket in page],
        next_before=page[-1].pk if len(rows) > limit else None,
    )


def _attach_tenants(tickets: Iterable[Ticket], scope: Sequence[Tenant]) -> None:
    by_id = {t.pk: t for t in scope}
    for ticket in tickets:
        ticket.tenant = by_id[ticket.tenant_id]


# The query parsed in every configuration, identical alternatives once: "zebra" is ``'zebra'`` in
# eleven configurations and ``'zebr'`` in four; OR-ing all sixteen would make the planner believe the
# word is sixteen times as frequent (and pick a walk over a whole tenant for a rare word).
_TSQUERY_SQL = """
SELECT string_agg('(' || q || ')', ' | ' ORDER BY q)
FROM (SELECT DISTINCT websearch_to_tsquery(c::regconfig, %(text)s)::text AS q
      FROM unnest(%(configs)s::text[]) AS c) AS parsed
WHERE q <> ''
"""


def parse_query(text: str) -> str | None:
    """The tsquery (as text) ``text`` means in any configuration; None when it has no word at all."""
    with connection.cursor() as cursor:
        cursor.execute(_TSQUERY_SQL, {"text": text, "configs": [f"pg_catalog.{c}" for c in query_configs()]})
        row = cursor.fetchone()
    return row[0] if row and row[0] else None


# Scopes of up to this many tenants are searched tenant by tenant (each with its own window and
# index lookups); larger ones (supervisors of many clients, administrators) in one pass.
PER_TENANT_MAX = 5
# The newest tickets of a scope that are checked directly before the GIN indexes are asked.
WINDOW_PER_TENANT = 500
WINDOW_GLOBAL = 1500

# The id query for one scope (one tenant, or all of them), as two parts that never overlap, read in
# order until a page is full:
#   1. the window: the scope's newest WINDOW tickets (of the filtered statuses), each checked directly
#      (its subject, then its entries through the ticket's timeline index): a common word fills the
#      page here, after at most WINDOW tickets, however many rows it matches in all;
#   2. only when (1) did not fill the page: the GIN indexes (tenant_id, search_vector) of tickets
#      and entries below the window: the word is rare there (less than a page per WINDOW tickets).
# The window's ids come from an index-only scan of (tenant, id) or (tenant, status, id): a walk of
# the primary key filtered by tenant looks as cheap to the planner and reads every other tenant's
# newer tickets first. ``OFFSET 0`` keeps the EXISTS of (1) a probe per ticket (else PostgreSQL may
# hash every entry with the word first). ``ORDER BY ticket_id + 0`` in (2) keeps the planner from
# walking a b-tree in order instead: with a misjudged word frequency that walk reads the whole
# tenant. The Limit above the Append stops before (2) starts when (1) was enough.
_SCOPE_SQL = """
    (SELECT x.ticket_id FROM (
        (SELECT w.id AS ticket_id FROM (
            SELECT tt.id, tt.search_vector FROM (
                SELECT t.id FROM tickets_ticket t
                WHERE {scope_t} {status_t} {before_t} ORDER BY t.id DESC LIMIT {window}) AS newest
            JOIN tickets_ticket tt ON tt.id = newest.id) AS w
         WHERE w.id > ({bound}) AND (w.search_vector @@ {q} OR EXISTS (
             SELECT 1 FROM tickets_interaction i
             WHERE i.ticket_id = w.id AND i.search_vector @@ {q} {notes} OFFSET 0))
         ORDER BY w.id DESC)
        UNION ALL
        (SELECT g.ticket_id FROM (
            SELECT t.id AS ticket_id FROM tickets_ticket t
            WHERE {scope_t} AND t.search_vector @@ {q} AND t.id <= ({bound}) {status_t} {before_t}
            UNION
            SELECT i.ticket_id FROM tickets_interaction i
            WHERE {scope_i} AND i.search_vector @@ {q} AND i.ticket_id <= ({bound}) {before_i} {notes}
                {status_i}
         ) AS g ORDER BY g.ticket_id + 0 DESC)
    ) AS x LIMIT %(limit)s)
"""
_BOUND_SQL = (
    "SELECT coalesce(min(b.id), 0) FROM (SELECT t.id FROM tickets_ticket t "
    "WHERE {scope_t} {status_t} {before_t} ORDER BY t.id DESC LIMIT {window}) AS b"
)


def _ids_sql(*, q: str, scopes: Sequence[str], statuses: int, before: bool, notes: bool) -> str:
    """The id query: the newest ``%(limit)s`` matching tickets over ``scopes``, each a tenant condition
    on ``{a}`` (the table's alias): ``{a}.tenant_id = 42`` (a literal: each tenant's part is planned
    with that tenant's own size, and tenants differ by orders of magnitude),
    ``{a}.tenant_id = ANY(%(tenants)s::bigint[])``, or ``TRUE`` (every tenant)."""
    parts = {
        # One status as "=": the (tenant, status, id) index then yields the window in order.
        "status_t": (
            ("AND t.status = %(status)s" if statuses == 1 else "AND t.status = ANY(%(statuses)s::varchar[])")
            if statuses
            else ""
        ),
        "status_i": (
            "AND EXISTS (SELECT 1 FROM tickets_ticket st WHERE st.id = i.ticket_id "
            "AND st.status = ANY(%(statuses)s::varchar[]))"
            if statuses
            else ""
        ),
        "before_t": "AND t.id < %(before)s" if before else "",
        "before_i": "AND i.ticket_id < %(before)s" if before else "",
        "notes": "" if notes else f"AND i.direction <> '{Direction.NOTE.value}'",
    }
    sources = []
    for condition in scopes:
        one_tenant = "= ANY" not in condition and condition != "TRUE"
        scoped = {
            **parts,
            "scope_t": condition.format(a="t"),
            "scope_i": condition.format(a="i"),
            "window": WINDOW_PER_TENANT if one_tenant else WINDOW_GLOBAL,
        }
        sources.append(_SCOPE_SQL.format(**scoped, q=q, bound=_BOUND_SQL.format(**scoped)))
    # Only constant fragments and integer tenant ids; the user's text is a bound parameter.
    union = "\n    UNION\n".join(sources)
    return f"SELECT m.ticket_id FROM ({union}) AS m\nORDER BY m.ticket_id DESC LIMIT %(limit)s"  # noqa: S608


# The shown page only: the subject with its hits marked, and the best matching entry's excerpt.
_SNIPPETS_SQL = """
SELECT t.id,
    CASE WHEN t.search_vector @@ {q}
         THEN ts_headline(care_search_config(t.language), translate(t.subject, E'\\x02\\x03', ''), {q},
                          'HighlightAll=true, StartSel=' || chr(2) || ', StopSel=' || chr(3))
    END,
    CASE WHEN b.id IS NOT NULL
         THEN ts_headline(care_search_config(t.language),
                          translate(left(b.body_text, 20000), E'\\x02\\x03', ''),
                          {q}, 'MaxWords=35, MinWords=12, MaxFragments=2, FragmentDelimiter=" … ", StartSel='
                          || chr(2) || ', StopSel=' || chr(3))
    END,
    b.direction
FROM tickets_ticket t
LEFT JOIN LATERAL (
    SELECT i.id, i.body_text, i.direction FROM tickets_interaction i
    WHERE i.ticket_id = t.id AND i.search_vector @@ {q} {entry_filters}
    ORDER BY ts_rank(i.search_vector, {q}) DESC, i.occurred_at DESC, i.id DESC
    LIMIT 1
) AS b ON true
WHERE t.id = ANY(%(ids)s::bigint[])
"""


def _full_text(
    text: str,
    scope: Sequence[Tenant],
    statuses: Sequence[str],
    include_notes: bool,
    before: int | None,
    limit: int,
    *,
    every_tenant: bool,
) -> SearchResult:
    tsquery = parse_query(text)
    if tsquery is None:
        return SearchResult(kind="empty", query=text, message=_("Enter a word to search for."))
    # A literal (psycopg binds on the client), so each branch is planned with the words known.
    q = "%(q)s::tsquery"
    params: dict[str, Any] = {
        "q": tsquery,
        "tenants": [t.pk for t in scope],
        "limit": limit + 1,
        "statuses": list(statuses),
        "status": statuses[0] if statuses else "",
        "before": before,
    }
    if every_tenant:
        scopes = ["TRUE"]
    elif len(scope) <= PER_TENANT_MAX:
        scopes = [f"{{a}}.tenant_id = {int(tenant.pk)}" for tenant in scope]
    else:
        scopes = ["{a}.tenant_id = ANY(%(tenants)s::bigint[])"]
    sql = _ids_sql(q=q, scopes=scopes, statuses=len(statuses), before=before is not None, notes=include_notes)
    notes_filter = "" if include_notes else f"AND i.direction <> '{Direction.NOTE.value}'"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    page_ids = ids[:limit]
    next_before = page_ids[-1] if len(ids) > limit else None
    if not page_ids:
        return SearchResult(kind="text", query=text)
    tickets = {
        ticket.pk: ticket
        for ticket in Ticket.objects.filter(pk__in=page_ids, tenant_id__in=params["tenants"]).select_related(
            "customer", "assignee__user"
        )
    }
    _attach_tenants(tickets.values(), scope)
    with connection.cursor() as cursor:
        cursor.execute(_SNIPPETS_SQL.format(q=q, entry_filters=notes_filter), {"q": tsquery, "ids": page_ids})
        snippets = {row[0]: row[1:] for row in cursor.fetchall()}
    hits = []
    for pk in page_ids:
        ticket = tickets.get(pk)
        if ticket is None:  # deleted between the two queries
            continue
        subject, body, direction = snippets.get(pk, (None, None, None))
        hits.append(
            SearchHit(
                ticket=ticket,
                subject=marked(subject) if subject is not None else escape(ticket.subject),
                snippet=marked(body) if body is not None else mark_safe(""),
                snippet_is_note=direction == Direction.NOTE,
            )
        )
    return SearchResult(kind="text", query=text, hits=hits, next_before=next_before)


def marked(headline: str) -> SafeString:
    """ts_headline's output as HTML: everything escaped, the hits in ``<mark>``."""
    parts = []
    for index, piece in enumerate(re.split(f"[{_START}{_STOP}]", headline)):
        parts.append(f"<mark>{escape(piece)}</mark>" if index % 2 else str(escape(piece)))
    return mark_safe("".join(parts))  # noqa: S308 - every piece is escaped above
