"""The jti replay cache: every caller JWT's id is remembered until the token dies, so a token
can be used once.

Spec: https://cds-hooks.hl7.org/2.0/#trusting-cds-clients (jti: "a nonce string value that
uniquely identifies this authentication JWT")
"""

import hashlib
import heapq
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from cds_hooks.errors import ServiceBusy

__all__ = ["InMemoryReplayCache", "ReplayCache"]

log = logging.getLogger(__name__)


class ReplayCache(Protocol):
    """Remembers JWT ids until they expire. Shared by all workers when there is more than one."""

    async def first_use(self, key: str, expires_at: float) -> bool:
        """True the first time `key` is seen before `expires_at` (epoch seconds), else False.

        Raises ServiceBusy when it cannot remember one more key (never forget a live one)."""
        ...


class InMemoryReplayCache:
    """A replay cache for one process: an 8-byte digest of each key, kept until its token dies.

    Digests are filed by when they die, in buckets of `BUCKET_SECONDS` that are forgotten whole
    once their last second has passed: late, never early. About 100 to 150 bytes a key, so the
    default `maxsize` of 100,000 keys costs 10 to 15 MB; that is 100,000 live tokens, about 330
    calls a second with 5-minute tokens. When it is full a new token is refused (ServiceBusy,
    503, with a warning at most once a minute) rather than forgetting a live one, which would
    let that token be replayed. Two keys sharing a digest (odds about 1 in 10^9 when full) would
    refuse the second token as a replay: a 401 the client retries with a new token, never an
    acceptance. (A cachetools TLRUCache, used before, took about 350 bytes a key and, when full,
    silently forgot live ones.)
    """

    BUCKET_SECONDS = 10
    WARN_EVERY_SECONDS = 60.0

    def __init__(self, maxsize: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if maxsize < 1:
            raise ValueError("the replay cache needs room for at least one token")
        self._maxsize = maxsize
        self._clock = clock
        self._seen: set[int] = set()
        self._buckets: dict[int, list[int]] = {}  # last second of the bucket -> digests
        self._ends: list[int] = []  # the buckets' last seconds, a heap
        self._warned_at = -math.inf

    async def first_use(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        while self._ends and self._ends[0] < now:
            self._seen.difference_update(self._buckets.pop(heapq.heappop(self._ends)))
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest())
        if digest in self._seen:
            return False
        if len(self._seen) >= self._maxsize:
            if now - self._warned_at >= self.WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning(
                    "replay cache full (%d live tokens): new tokens are refused until some "
                    "expire; give it a larger size",
                    self._maxsize,
                )
            raise ServiceBusy("the replay cache is full: retry shortly")
        end = math.ceil(expires_at / self.BUCKET_SECONDS) * self.BUCKET_SECONDS
        bucket = self._buckets.get(end)
        if bucket is None:
            bucket = self._buckets[end] = []
            heapq.heappush(self._ends, end)
        bucket.append(digest)
        self._seen.add(digest)
        return True

    def __len__(self) -> int:
        return len(self._seen)
