"""The per-account send rate, kept in the real Redis: never more than the limit in any window, even
with many workers asking at once, and a refusal that says how long to wait."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from care.connectors.social import ratelimit


@pytest.fixture
def account():
    """An account id of this test only (test runs share this machine's Redis); forgotten afterwards."""
    account_id = f"test-{uuid.uuid4().hex}"
    yield account_id
    ratelimit.reset(account_id)


def test_grants_the_rate_then_says_how_long_to_wait(account):
    granted = [ratelimit.acquire(account, 3) for _ in range(3)]
    refused = ratelimit.acquire(account, 3)

    assert granted == [0.0, 0.0, 0.0]
    assert 0 < refused <= 1.0

    time.sleep(refused + 0.01)
    assert ratelimit.acquire(account, 3) == 0.0


def test_a_refusal_takes_nothing(account):
    assert ratelimit.acquire(account, 1) == 0.0
    waits = [ratelimit.acquire(account, 1) for _ in range(5)]

    # Asking again while refused does not push the next grant further away.
    assert all(0 < wait <= 1.0 for wait in waits)
    assert waits == sorted(waits, reverse=True)
    time.sleep(waits[-1] + 0.01)
    assert ratelimit.acquire(account, 1) == 0.0


def test_a_rate_below_one_per_second_spaces_single_sends(account):
    assert ratelimit.acquire(account, 0.5) == 0.0
    wait = ratelimit.acquire(account, 0.5)

    assert 1.9 < wait <= 2.0


def test_accounts_have_their_own_allowance(account):
    other = f"{account}-other"
    try:
        assert ratelimit.acquire(account, 1) == 0.0
        assert ratelimit.acquire(account, 1) > 0
        assert ratelimit.acquire(other, 1) == 0.0
    finally:
        ratelimit.reset(other)


def test_the_key_expires_and_carries_the_cache_prefix(account, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": "care-prefix"}}
    try:
        ratelimit.acquire(account, 5)
        key = ratelimit.key_for(account)
        client = ratelimit.redis_for(settings.CACHE_URL)

        assert key.startswith("care-prefix:")
        assert account in key
        assert 0 < client.pttl(key) <= 2000  # gone soon after the account stops sending
    finally:
        ratelimit.reset(account)


@pytest.mark.parametrize("rate", [0, -1])
def test_a_rate_must_be_positive(account, rate):
    with pytest.raises(ValueError, match="positive"):
        ratelimit.acquire(account, rate)


def test_many_threads_never_exceed_the_rate_in_any_window(account):
    rate, threads, duration = 5, 8, 2.5
    grants: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                wait = ratelimit.acquire(account, rate)
                if wait == 0:
                    with lock:
                        grants.append(time.monotonic())
                else:
                    time.sleep(min(wait, 0.02))  # keep asking, as a crowd of workers would
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)

    assert not errors
    grants.sort()
    # Times are taken here, after Redis answered: allow a little latency at the window's edge.
    for index, first in enumerate(grants):
        within = [moment for moment in grants[index:] if moment < first + 1.0 - 0.05]
        assert len(within) <= rate, f"{len(within)} grants within one second"
    # And the limit is a rate, not a stop: the crowd got close to all of it.
    assert len(grants) >= rate * 2
    assert len(grants) <= rate * 3
