"""Where the keys of trusted CDS clients come from: each `TrustedIssuer`'s JWK Set, inline or
in a file, else fetched from its allow-listed `jku` URLs (`JwksFetcher`: cached, refreshed at a
bounded rate).

>>> sorted(keys_by_kid({"keys": [{"kid": "a", "kty": "EC"}, {"kty": "EC"}]}))
['a']

Spec: https://cds-hooks.hl7.org/2.0/#trusting-cds-clients
"""

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds_hooks.jws import JwtPolicy

__all__ = ["JwksFetcher", "TrustedIssuer", "keys_by_kid"]

log = logging.getLogger(__name__)


class TrustedIssuer(BaseModel):
    """One CDS client we trust: its `iss`, where its keys are, and optionally its tenants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks: dict[str, Any] | None = None
    jwks_file: Path | None = None
    jku: tuple[str, ...] = ()
    tenants: tuple[str, ...] | None = None
    # FHIR base URLs this client's calls may name as fhirServer; empty: any public server.
    fhir_servers: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_keys(self) -> "TrustedIssuer":
        if self.jwks is None and self.jwks_file is None and not self.jku:
            raise ValueError(f"issuer {self.iss!r} needs jwks, jwks_file or an allow-listed jku")
        return self

    def static_keys(self) -> dict[str, dict[str, Any]]:
        """kid -> JWK from the inline set and the file; raises ValueError if unreadable."""
        keys = keys_by_kid(self.jwks) if self.jwks is not None else {}
        if self.jwks_file is not None:
            try:
                keys |= keys_by_kid(orjson.loads(self.jwks_file.read_bytes()))
            except (OSError, orjson.JSONDecodeError) as error:
                raise ValueError(f"cannot read JWK Set file {self.jwks_file}: {error}") from None
        return keys


def keys_by_kid(jwks: Any) -> dict[str, dict[str, Any]]:
    """kid -> JWK for a JWK Set document; keys without a kid cannot be selected and are skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("a JWK Set is an object with a 'keys' array")
    return {
        key["kid"]: key
        for key in jwks["keys"]
        if isinstance(key, dict) and isinstance(key.get("kid"), str)
    }


@dataclass
class _CachedSet:
    keys: dict[str, dict[str, Any]]
    fetched_at: float


@dataclass
class JwksFetcher:
    """JWK Sets fetched from allow-listed `jku` URLs, cached, refreshed at a bounded rate."""

    http: httpx.AsyncClient
    policy: JwtPolicy
    clock: Callable[[], float] = time.time
    _cache: dict[str, _CachedSet] = field(default_factory=dict)
    _last_try: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def key(self, url: str, kid: str) -> dict[str, Any] | None:
        cached = self._cache.get(url)
        now = self.clock()
        fresh = cached is not None and now - cached.fetched_at < self.policy.jwks_cache_ttl
        if fresh and cached is not None and kid in cached.keys:
            return cached.keys[kid]
        # Stale, first use, or an unknown kid (the client may have rotated its keys). Every
        # fetch after the first waits out the refresh interval, failed fetches included, so
        # tokens with made-up kids cannot make us hammer the client's key server.
        if self._may_refresh(url, now):
            async with self._locks.setdefault(url, asyncio.Lock()):
                if self._may_refresh(url, now):  # another call may have just refreshed
                    await self._refresh(url)
        cached = self._cache.get(url)
        return cached.keys.get(kid) if cached else None

    def _may_refresh(self, url: str, now: float) -> bool:
        last = self._last_try.get(url, -math.inf)
        return last < now and now - last >= self.policy.jwks_refresh_interval

    async def _refresh(self, url: str) -> None:
        self._last_try[url] = self.clock()
        try:
            response = await self.http.get(url, timeout=self.policy.jwks_timeout)
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            if len(response.content) > self.policy.jwks_max_bytes:
                raise ValueError("JWK Set over the size limit")
            keys = keys_by_kid(orjson.loads(response.content))
        except (httpx.HTTPError, ValueError) as error:
            # Keep any keys we had: a transient failure should not lock every client out.
            log.warning("JWK Set at %s could not be fetched: %s", url, error)
            return
        self._cache[url] = _CachedSet(keys, self.clock())
