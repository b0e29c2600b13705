"""SLA tests reuse routing's helpers (online agents)."""

from tests.routing.conftest import online_agent  # noqa: F401 - a fixture
