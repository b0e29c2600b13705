"""Strategies: in which order the eligible agents of a step are tried.

Each strategy is a small class registered by name; a queue names one (or none for the channel's
default). To add one, subclass ``Strategy``, give it a ``name`` and ``label``, implement ``sort_key``
and decorate it with ``@register``. Ties always fall back to the agent id, so orders are
deterministic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from django.utils.translation import gettext_lazy as _

from care.core.channels import Channel
from care.routing.eligibility import AgentFacts

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


class Strategy:
    name: ClassVar[str]
    label: ClassVar[Any]

    def sort_key(self, agent: AgentFacts) -> tuple[Any, ...]:
        raise NotImplementedError

    def order(self, agents: Sequence[AgentFacts]) -> list[AgentFacts]:
        return sorted(agents, key=lambda a: (*self.sort_key(a), a.agent_id))


STRATEGIES: dict[str, Strategy] = {}
_S = TypeVar("_S", bound=type[Strategy])


def register(cls: _S) -> _S:
    STRATEGIES[cls.name] = cls()
    return cls


def idle_since(agent: AgentFacts) -> dt.datetime:
    """When the agent last became free: came online, or finished or was given work, the latest."""
    return max(agent.presence_changed_at, agent.last_released_at or NEVER, agent.last_routed_at or NEVER)


@register
class LongestIdle(Strategy):
    """Agents with nothing of the channel in hand first, the one idle longest first; then the others
    by how long ago they were last given work. The usual rule for calls."""

    name = "longest_idle"
    label = _("Longest idle")

    def sort_key(self, agent: AgentFacts) -> tuple[Any, ...]:
        if agent.load == 0:
            return (0, idle_since(agent))
        return (1, agent.last_routed_at or NEVER)


@register
class LeastLoaded(Strategy):
    """The agent with the smallest share of their capacity in use; among equals, who was given work
    longest ago. The usual rule for email and messages, where agents hold several items."""

    name = "least_loaded"
    label = _("Least loaded")

    def sort_key(self, agent: AgentFacts) -> tuple[Any, ...]:
        share = agent.load / agent.capacity if agent.capacity else 1.0
        return (share, agent.last_routed_at or NEVER)


@register
class RoundRobin(Strategy):
    """Strict rotation: the agent given work longest ago (or never) is next, whatever their load."""

    name = "round_robin"
    label = _("Round robin")

    def sort_key(self, agent: AgentFacts) -> tuple[Any, ...]:
        return (agent.last_routed_at or NEVER,)


DEFAULT_BY_CHANNEL: dict[str, str] = {
    Channel.PHONE: "longest_idle",
    Channel.EMAIL: "least_loaded",
    Channel.SOCIAL: "least_loaded",
}


def strategy_for(name: str, channel: str) -> Strategy:
    return STRATEGIES.get(name or DEFAULT_BY_CHANNEL.get(channel, "least_loaded"), STRATEGIES["least_loaded"])
