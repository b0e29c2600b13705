"""Deployment checks: the health endpoint, and settings that stop the process on bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

PROJECT_DIR = Path(__file__).resolve().parent.parent


# --- /healthz ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_check_reports_database_and_redis(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_health_check_answers_503_when_redis_is_unreachable(client, settings):
    settings.CACHE_URL = "redis://127.0.0.1:1/2"  # nothing listens on port 1

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "error: ConnectionError"}


@pytest.mark.django_db
def test_health_check_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


# --- config.env helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" Yes ", True), ("ON", True), ("0", False), ("false", False), ("", False)],
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("CARE_TEST_FLAG", raw)
    assert env_bool("CARE_TEST_FLAG", default=not expected) is expected


def test_env_bool_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("CARE_TEST_FLAG", raising=False)
    assert env_bool("CARE_TEST_FLAG", default=True) is True
    assert env_bool("CARE_TEST_FLAG", default=False) is False


@pytest.mark.parametrize("raw", ["flase", "2", "y", "enabled"])
def test_env_bool_rejects_a_typo_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("DJANGO_DEBUG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"DJANGO_DEBUG='{raw}' is not a boolean"):
        env_bool("DJANGO_DEBUG", default=False)


def test_env_int_reads_integers_and_rejects_words(monkeypatch):
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", " 60 ")
    assert env_int("DATABASE_CONN_MAX_AGE", 0) == 60

    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "ten")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_CONN_MAX_AGE='ten' is not an integer"):
        env_int("DATABASE_CONN_MAX_AGE", 0)


def test_env_int_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("CARE_TEST_NUMBER", raising=False)
    assert env_int("CARE_TEST_NUMBER", 300) == 300


def test_env_str_requires_variables_without_default(monkeypatch):
    monkeypatch.delenv("CARE_TEST_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="CARE_TEST_REQUIRED must be set"):
        env_str("CARE_TEST_REQUIRED")
    assert env_str("CARE_TEST_REQUIRED", "fallback") == "fallback"
    monkeypatch.setenv("CARE_TEST_REQUIRED", "")
    assert env_str("CARE_TEST_REQUIRED", "fallback") == ""


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", " care.example.com, ,localhost ")
    assert env_list("DJANGO_ALLOWED_HOSTS", []) == ["care.example.com", "localhost"]


# --- starting Django with a bad environment fails loudly -----------------------------------------


def _start_django(**overrides):
    """Run ``django.setup()`` in a fresh interpreter with only the variables given here."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(PROJECT_DIR)),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/care",
        **overrides,
    }
    env = {name: value for name, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_good_environment_starts():
    result = _start_django(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="a-private-value-for-this-test")
    assert result.returncode == 0, result.stderr


def test_production_without_secret_key_refuses_to_start():
    result = _start_django(DJANGO_DEBUG="0")

    assert result.returncode != 0
    assert "ImproperlyConfigured: The environment variable DJANGO_SECRET_KEY must be set." in result.stderr


def test_production_with_the_development_secret_refuses_to_start():
    result = _start_django(
        DJANGO_DEBUG="0", DJANGO_SECRET_KEY="care-insecure-development-key-do-not-use-in-production"
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set to a private value when DJANGO_DEBUG is off." in result.stderr


def test_a_debug_typo_refuses_to_start():
    result = _start_django(DJANGO_DEBUG="flase")

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_DEBUG='flase' is not a boolean" in result.stderr


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://care@127.0.0.1/care"])
def test_a_database_other_than_postgresql_refuses_to_start(url):
    result = _start_django(DJANGO_DEBUG="1", DATABASE_URL=url)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL must point to PostgreSQL" in result.stderr
    assert not (PROJECT_DIR / "x.db").exists()


def test_env_file_fills_gaps_but_never_overrides(tmp_path, monkeypatch):
    import os

    from django.core.exceptions import ImproperlyConfigured

    from config.env import load_env_file

    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nCARE_TEST_FROM_FILE=file\nCARE_TEST_ALREADY_SET='file'\n", encoding="utf-8"
    )
    monkeypatch.delenv("CARE_TEST_FROM_FILE", raising=False)
    monkeypatch.setenv("CARE_TEST_ALREADY_SET", "environment")
    load_env_file(env_file)
    assert os.environ["CARE_TEST_FROM_FILE"] == "file"
    assert os.environ["CARE_TEST_ALREADY_SET"] == "environment"
    monkeypatch.delenv("CARE_TEST_FROM_FILE")

    env_file.write_text("NOT A SETTING\n", encoding="utf-8")
    with pytest.raises(ImproperlyConfigured, match="expected NAME=value"):
        load_env_file(env_file)
