"""The benchmarks' own database: same server as ``DATABASE_URL``, another name, never dev or test.

``configure`` must run before ``django.setup()`` and before anything opens a connection: it points
``DATABASES["default"]`` at the bench database. ``ensure_database`` then creates it when missing (or
drops it first with ``rebuild``) and applies the migrations.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import psycopg
from psycopg import sql

from bench.harness import log

DEFAULT_NAME = "care_bench"
QUICK_SUFFIX = "_quick"
# Databases to connect to for CREATE/DROP DATABASE, which cannot run inside the target itself.
MAINTENANCE_DATABASES = ("postgres", "template1")
_LIBPQ_OPTIONS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options", "application_name"}
)


def bench_database_name(*, quick: bool) -> str:
    """``care_bench`` (``BENCH_DATABASE_NAME``); quick runs get their own, so they never wipe a full one."""
    name = os.environ.get("BENCH_DATABASE_NAME", "").strip() or DEFAULT_NAME
    return name + QUICK_SUFFIX if quick else name


def configure(*, quick: bool) -> str:
    """Point Django's default database at the bench database; returns its name.

    Host, port, user and password stay those of ``DATABASE_URL`` (which may be an embedded server on
    another port), only the name changes. Refuses a name that is the dev or the test database.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    # Settings' DBConfig TypedDict does not allow the dynamic keys used below.
    default: dict[str, Any] = dict(settings.DATABASES["default"])
    name = bench_database_name(quick=quick)
    test_name = (default.get("TEST") or {}).get("NAME")
    protected = {default.get("NAME"), test_name, "template0", *MAINTENANCE_DATABASES}
    if name in protected or name.startswith("test_"):
        raise SystemExit(
            f"Refusing to benchmark in database {name!r}: it is the dev, a test or a system database. "
            "Set BENCH_DATABASE_NAME to a database the benchmarks may own."
        )
    settings.DATABASES["default"]["NAME"] = name
    # Keep the connection for the whole run: no request cycle closes it, and reconnecting per
    # iteration would measure connection setup instead of the query.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = None
    return name


def _connect_params() -> dict[str, Any]:
    from django.conf import settings

    default: dict[str, Any] = dict(settings.DATABASES["default"])
    params: dict[str, Any] = {
        key: default[setting]
        for key, setting in (("host", "HOST"), ("port", "PORT"), ("user", "USER"), ("password", "PASSWORD"))
        if default.get(setting)
    }
    # Connection options of DATABASE_URL that libpq understands (TLS mostly); Django's own are skipped.
    options = default.get("OPTIONS") or {}
    params.update({key: value for key, value in options.items() if key in _LIBPQ_OPTIONS})
    return params


def _maintenance_connection() -> psycopg.Connection[Any]:
    error: psycopg.Error | None = None
    for dbname in MAINTENANCE_DATABASES:
        try:
            return psycopg.connect(dbname=dbname, autocommit=True, **_connect_params())
        except psycopg.OperationalError as exc:
            error = exc
    raise SystemExit(f"Cannot connect to the PostgreSQL server of DATABASE_URL: {error}")


def ensure_database(*, rebuild: bool) -> None:
    """Create the bench database if missing (dropping it first with ``rebuild``), then migrate it."""
    from django.conf import settings
    from django.core.management import call_command

    name = settings.DATABASES["default"]["NAME"]
    with _maintenance_connection() as conn:
        if rebuild:
            log(f"dropping database {name}")
            # FORCE ends other sessions on the bench database only (PostgreSQL 13+).
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    log(f"migrating database {name}")
    call_command("migrate", interactive=False, verbosity=0, stdout=sys.stderr)
