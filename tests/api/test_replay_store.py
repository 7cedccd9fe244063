"""The jti replay store in a real Redis (tests/support/redis.py): shared by instances, atomic,
expiring with the token, and failing closed (503 + Retry-After, /readyz not ready) while Redis
is down, then recovering by itself."""

import asyncio
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI

from cds_hooks.errors import ReplayStoreUnavailable
from iris_prompt.app import create_app
from iris_prompt.ops.redis_replay import KEY_PREFIX, RedisReplayCache
from iris_prompt.register.clients import READ
from tests.api.register_support import ASSERTION_TYPE, probation
from tests.conftest import LiveService, bundled_codesets, live, make_registry, make_settings
from tests.support.redis import RedisServer
from tests.support.tokens import SigningKey

DISCOVERY = "/cds-services"


@contextmanager
def instance(key: SigningKey, redis_url: str, **overrides: object) -> Iterator[LiveService]:
    """One instance of the service (its own process state), replay store in `redis_url`."""

    def build(base_url: str) -> FastAPI:
        settings = make_settings(
            key, public_base_url=base_url, redis_url=redis_url, instances=2, **overrides
        )
        return create_app(settings, registry=make_registry(), codesets=bundled_codesets())

    with live(build, key) as service:
        yield service


def test_a_token_used_on_one_instance_is_refused_on_another(
    es384_key: SigningKey, redis_url: str
) -> None:
    with ExitStack() as stack:
        first = stack.enter_context(instance(es384_key, redis_url))
        second = stack.enter_context(instance(es384_key, redis_url))
        headers = first.headers(DISCOVERY)
        assert first.get(DISCOVERY, headers=headers).status_code == 200
        assert second.get(DISCOVERY, headers=headers).status_code == 401  # replayed elsewhere
        assert first.get(DISCOVERY, headers=headers).status_code == 401
        assert second.get(DISCOVERY).status_code == 200  # a fresh token is fine anywhere


def test_a_register_client_assertion_used_on_one_instance_is_refused_on_another(
    es384_key: SigningKey, redis_url: str, tmp_path: Path
) -> None:
    """A partner's client assertion (issue 13) shares the replay store with the caller JWTs."""
    shared = {"register_clients": [probation.client()], "data_dir": tmp_path}
    with ExitStack() as stack:
        first = stack.enter_context(instance(es384_key, redis_url, **shared))
        second = stack.enter_context(instance(es384_key, redis_url, **shared))
        url = first.base_url + "/oauth/token"
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": probation.assertion(url),
            "scope": READ,
        }

        def token(service: LiveService) -> int:
            body = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            return service.client.post("/oauth/token", content=body, headers=headers).status_code

        assert token(first) == 200
        assert token(second) == 401  # the same assertion, replayed to another instance


def test_set_if_absent_is_atomic_and_expires_with_the_token(redis_url: str) -> None:
    async def race() -> tuple[list[bool], int]:
        caches = [RedisReplayCache(redis_url) for _ in range(4)]
        expires_at = time.time() + 120
        try:
            answers = await asyncio.gather(
                *(cache.first_use("iss\njti-1", expires_at) for cache in caches for _ in range(25))
            )
        finally:
            for cache in caches:
                await cache.aclose()
        return answers, round(expires_at)

    answers, expires_at = asyncio.run(race())
    assert answers.count(True) == 1 and len(answers) == 100
    client = redis.Redis.from_url(redis_url)
    try:
        (name,) = client.keys(KEY_PREFIX + "*")
        assert b"jti-1" not in name  # a digest, not the jti
        assert abs(client.expiretime(name) - expires_at) <= 1
    finally:
        client.close()


def test_redis_down_refuses_calls_with_503_then_recovers(
    es384_key: SigningKey, redis_url: str, redis_server: RedisServer
) -> None:
    with instance(es384_key, redis_url) as service:
        assert service.get(DISCOVERY).status_code == 200
        assert service.get("/readyz").status_code == 200
        redis_server.stop()
        try:
            refused = service.get(DISCOVERY)
            assert refused.status_code == 503  # never accepted unchecked
            assert refused.headers["Retry-After"] == "10"
            assert "replay store cannot be reached" in refused.text
            ready = service.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["failing"] == ["replay store"]
        finally:
            redis_server.start()
        assert service.get("/readyz").status_code == 200
        assert service.get(DISCOVERY).status_code == 200


def test_the_replay_store_error_is_a_503(redis_server: RedisServer) -> None:
    async def down() -> None:
        cache = RedisReplayCache(redis_server.url, timeout=0.2)
        try:
            redis_server.stop()
            with pytest.raises(ReplayStoreUnavailable):
                await cache.first_use("k", time.time() + 60)
            assert not await cache.ping()
        finally:
            redis_server.start()
            await cache.aclose()

    asyncio.run(down())
