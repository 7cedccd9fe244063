"""The register as the app and the household check see it: one object made at start-up.

register = Register.open(store, fhir_base="https://iris.example.nhs.uk/fhir",
                         clients=settings.register_clients, http=jwks_http)
app.include_router(register.router(public_base_url))
HouseholdLookup(register=register.in_force)     # the household check consults it
"""

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cds_hooks.auth import JwtPolicy
from cds_hooks.replay import ReplayCache
from iris_prompt.register.access_log import access_log_reader
from iris_prompt.register.api import register_router
from iris_prompt.register.auth import TokenService, token_key
from iris_prompt.register.clients import RegisterClient
from iris_prompt.register.repository import FlagRegister
from iris_prompt.store.service import Store

__all__ = ["Register"]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Register:
    flags: FlagRegister
    tokens: TokenService
    store: Store
    clock: Callable[[], datetime.datetime] = field(default=_utc_now)

    @classmethod
    def open(
        cls,
        store: Store,
        *,
        fhir_base: str,
        clients: Sequence[RegisterClient],
        http: httpx.AsyncClient,
        policy: JwtPolicy | None = None,
        clock: Callable[[], datetime.datetime] = _utc_now,
        replay_cache: ReplayCache | None = None,
    ) -> "Register":
        tokens = TokenService(
            clients,
            key=token_key(store.key),
            http=http,
            policy=policy,
            replay_cache=replay_cache,
        )
        return cls(FlagRegister(store.engine, fhir_base), tokens, store, clock)

    async def in_force(
        self, numbers: Sequence[str], now: datetime.datetime
    ) -> Mapping[str, list[dict[str, Any]]]:
        """For the household check (`engine.lookup.RegisterSource`)."""
        return await run_in_threadpool(self.flags.in_force, numbers, now)

    def router(self, public_base_url: str | None) -> APIRouter:
        return register_router(
            self.flags, self.tokens, public_base_url=public_base_url, clock=self.clock
        )

    def access_log(self) -> Callable[[Request], Any]:
        reader: Callable[[Request], Any] = access_log_reader(
            self.flags, self.tokens, self.store.audit
        )
        return reader
