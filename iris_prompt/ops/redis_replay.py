"""The jti replay store in Redis, shared by every worker and every instance.

One key per token, set only if absent and expiring when the token dies (`SET key 1 NX EXAT
exp+leeway`): one atomic command, so two workers given the same token at the same moment
cannot both accept it. Keys are a digest of issuer and jti (`iris:jti:<32 hex>`), never the
token. If Redis cannot answer within its timeout the call is refused with 503 and Retry-After
(`ReplayStoreUnavailable`), never accepted unchecked, and `/readyz` says not ready until Redis
answers again.
"""

import hashlib
import logging
import math
import time

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cds_hooks.errors import ReplayStoreUnavailable
from iris_prompt.ops import metrics

__all__ = ["KEY_PREFIX", "RedisReplayCache"]

log = logging.getLogger(__name__)

KEY_PREFIX = "iris:jti:"


class RedisReplayCache:
    """`cds_hooks.replay.ReplayCache` in Redis. `timeout` bounds each command (seconds)."""

    WARN_EVERY_SECONDS = 60.0

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self._redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One quick retry on a dropped connection (a Redis restart); no waiting about.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self._warned_at = -math.inf
        self.available = True

    async def first_use(self, key: str, expires_at: float) -> bool:
        name = KEY_PREFIX + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        try:
            created = await self._redis.set(name, b"1", nx=True, exat=math.ceil(expires_at))
        except RedisError as error:
            self._failed(error)
            raise ReplayStoreUnavailable(
                "the replay store cannot be reached: retry shortly"
            ) from None
        self.available = True
        return bool(created)

    async def ping(self) -> bool:
        """Whether Redis answers now (for /readyz)."""
        try:
            await self._redis.ping()
        except RedisError as error:
            self._failed(error)
            return False
        self.available = True
        return True

    def _failed(self, error: RedisError) -> None:
        self.available = False
        metrics.REPLAY_STORE_ERRORS.labels(type(error).__name__).inc()
        now = time.monotonic()
        if now - self._warned_at >= self.WARN_EVERY_SECONDS:
            self._warned_at = now
            # The error's type only: its text could name the server's address and password.
            log.error(
                "replay store unavailable (%s): calls are refused with 503 until it answers",
                type(error).__name__,
            )

    async def aclose(self) -> None:
        await self._redis.aclose()
