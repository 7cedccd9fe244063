"""The jti replay cache: a token is used once, nothing live is forgotten, memory is bounded."""

import asyncio

import pytest

from cds_hooks.errors import ServiceBusy
from cds_hooks.replay import InMemoryReplayCache


def test_replay_cache_forgets_a_jti_when_its_token_dies() -> None:
    now = [1000.0]
    cache = InMemoryReplayCache(clock=lambda: now[0])
    assert asyncio.run(cache.first_use("a", 1100.0))
    assert not asyncio.run(cache.first_use("a", 1100.0))
    now[0] = 1101.0
    assert asyncio.run(cache.first_use("a", 1200.0))


def test_replay_cache_never_forgets_a_jti_before_its_token_dies() -> None:
    # Keys are forgotten a bucket of seconds at a time: late, never early.
    now = [1000.0]
    cache = InMemoryReplayCache(clock=lambda: now[0])
    assert asyncio.run(cache.first_use("a", 1105.0))
    for now[0] in (1000.0, 1104.9, 1105.0):
        assert not asyncio.run(cache.first_use("a", 1105.0)), now[0]
    now[0] = 1105.0 + InMemoryReplayCache.BUCKET_SECONDS + 0.1  # at most a bucket late
    assert asyncio.run(cache.first_use("a", 1200.0))


def test_a_full_replay_cache_refuses_new_tokens_and_forgets_no_live_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    cache = InMemoryReplayCache(maxsize=3, clock=lambda: now[0])
    for key, dies in (("b", 1200.0), ("a", 1100.0), ("c", 1300.0)):
        assert asyncio.run(cache.first_use(key, dies))
    assert not caplog.records
    for _ in range(2):
        with pytest.raises(ServiceBusy):
            asyncio.run(cache.first_use("d", 1400.0))
    assert caplog.text.count("replay cache full (3 live tokens)") == 1  # warned once a minute
    for key in ("a", "b", "c"):
        assert not asyncio.run(cache.first_use(key, 1400.0)), f"{key} forgotten while live"
    now[0] = 1111.0  # "a" has died: room for one more
    assert asyncio.run(cache.first_use("d", 1400.0))
    assert len(cache) == 3


def test_replay_cache_memory_per_token() -> None:
    # The cache holds every token of the last hour: its size per token bounds the service's
    # memory under load (cachetools' TLRUCache took about 350 bytes).
    import tracemalloc

    cache = InMemoryReplayCache(clock=lambda: 1000.0)
    keys = [f"https://ehr.example\n{n:032x}-jti" for n in range(20_000)]

    async def fill() -> None:
        for n, key in enumerate(keys):
            assert await cache.first_use(key, 1000.0 + n % 3600)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(fill())
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # 100-150 bytes, as the set's table grows in steps (20,000 keys is just after a step).
    assert used / len(keys) < 200, f"{used / len(keys):.0f} bytes a token"
