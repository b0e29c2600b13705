"""How fast Care sends through one social account: a sliding-window limit shared by every worker.

Each platform caps the messages an account may send (WhatsApp Cloud API about 80 per second per
number, Messenger a few hundred per minute per page, X a few per second); an adapter states the rate
Care keeps (``Adapter.rate_per_second``, the platform's limit with headroom). The limit is kept in
Redis (the cache's server and key prefix) by one Lua script, so that any number of workers on any
number of machines together never send more than ``limit`` messages in any ``window``: the script
reads the clock from Redis (one clock for all workers), drops the grants older than the window,
and grants when fewer than ``limit`` remain. A refusal says how long until the oldest grant leaves
the window; the send task retries itself after that long, without counting it as a failed attempt.
"""

from __future__ import annotations

import math
import uuid
from functools import cache
from typing import Any

from django.conf import settings
from django.core.cache import caches

from care.realtime.log import redis_for

# KEYS[1]: the account's sorted set of grant times (microseconds, from the Redis clock).
# ARGV: window in microseconds, limit, a unique member for this grant.
# Returns 0 when granted, else the microseconds until a grant could succeed.
_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


def window_for(rate_per_second: float) -> tuple[float, int]:
    """(window in seconds, grants per window) keeping ``rate_per_second``: a one-second window for
    rates of one or more, else one grant per ``1 / rate`` seconds (X's slow DM limits)."""
    if not rate_per_second > 0:
        raise ValueError("rate_per_second must be positive")
    if rate_per_second >= 1:
        return 1.0, max(1, math.floor(rate_per_second))
    return 1.0 / rate_per_second, 1


def key_for(account_id: int | str) -> str:
    return caches["default"].make_key(f"social:send-rate:{account_id}")


@cache
def _script(url: str) -> Any:
    # Registered: it runs as EVALSHA, the body is sent once per server.
    return redis_for(url).register_script(_ACQUIRE)


def acquire(account_id: int | str, rate_per_second: float) -> float:
    """Take one send from ``account_id``'s allowance: 0.0 when it may send now, else the seconds to
    wait before asking again (nothing is taken then)."""
    window, limit = window_for(rate_per_second)
    waited = _script(settings.CACHE_URL)(
        keys=[key_for(account_id)],
        args=[int(window * 1_000_000), limit, uuid.uuid4().hex],
    )
    return int(waited) / 1_000_000


def reset(account_id: int | str) -> None:
    """Forget an account's recent sends (tests, and an administrator after a platform raised a limit)."""
    redis_for(settings.CACHE_URL).delete(key_for(account_id))
