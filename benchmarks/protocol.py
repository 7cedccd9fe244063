"""Protocol overhead for a small patient-view call: caller JWT (ES384) + parse + validate +
prefetch check + serialise, with no clinical rules (a handler that returns one card).

Three views of the same work: the protocol steps called directly; the whole FastAPI app in
process (routing included); and over HTTP on loopback to a real uvicorn server (network and
HTTP parsing included). Target: median under 2 ms for the protocol overhead.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from benchmarks.table import Row, summarise
from cds_hooks import (
    CallContext,
    Card,
    CdsRequest,
    CdsResponse,
    CdsService,
    PrefetchData,
    PrefetchTemplate,
    ServiceRegistry,
    Source,
    dump_json,
    parse_request,
)
from cds_hooks.auth import JwtVerifier, TrustedIssuer
from cds_hooks.fhir import resolve_prefetch
from iris_prompt.app import create_app
from iris_prompt.settings import Settings
from tests.support.server import serve_built
from tests.support.tokens import SigningKey, claims, generate_key, jwks

SECTION = "protocol"
ISS = "https://ehr.bench.example"
SERVICE = "bench"
N, WARMUP = 1000, 100

BODY = orjson.dumps(
    {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/u1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1990-01-01"},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "total": 0},
        },
    }
)
PREFETCH = {
    "patient": PrefetchTemplate("Patient/{{context.patientId}}"),
    "conditions": PrefetchTemplate("Condition?patient={{context.patientId}}"),
}
CARD = Card(summary="Consider a safe, private enquiry", indicator="info", source=Source(label="b"))


async def one_card(_r: CdsRequest, _p: PrefetchData, _c: CallContext) -> CdsResponse:
    return CdsResponse(cards=[CARD])


def registry() -> ServiceRegistry:
    return ServiceRegistry(
        [
            CdsService(
                id=SERVICE,
                hook="patient-view",
                description="b",
                handler=one_card,
                prefetch=PREFETCH,
            )
        ]
    )


async def timed(n: int, step: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(WARMUP):
        await step(i)
    out = []
    for i in range(WARMUP, WARMUP + n):
        started = time.perf_counter()
        await step(i)
        out.append(time.perf_counter() - started)
    return out


def tokens(key: SigningKey, aud: str) -> list[str]:
    return [key.sign(claims(ISS, aud)) for _ in range(N + WARMUP)]


async def direct(key: SigningKey) -> list[float]:
    aud = f"https://iris.bench.example/cds-services/{SERVICE}"
    signed = tokens(key, aud)
    async with httpx.AsyncClient() as http:
        verifier = JwtVerifier([TrustedIssuer(iss=ISS, jwks=jwks(key))], http=http)

        async def step(i: int) -> bytes:
            await verifier.verify(signed[i], aud)
            request = parse_request(orjson.loads(BODY))
            tokens_ = request.context.prefetch_tokens()
            prefetch = await resolve_prefetch(PREFETCH, request.prefetch, tokens_, None)
            return dump_json(await one_card(request, prefetch, None))  # type: ignore[arg-type]

        return await timed(N, step)


def settings(key: SigningKey, base_url: str) -> Settings:
    return Settings(
        trusted_issuers=[TrustedIssuer(iss=ISS, jwks=jwks(key))],
        public_base_url=base_url,
        log_level="WARNING",
    )


async def in_process(key: SigningKey) -> list[float]:
    base = "https://iris.bench"
    app = create_app(settings(key, base), registry=registry())
    signed = tokens(key, f"{base}/cds-services/{SERVICE}")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:

        async def step(i: int) -> None:
            headers = {"Authorization": f"Bearer {signed[i]}", "Content-Type": "application/json"}
            response = await client.post(f"/cds-services/{SERVICE}", content=BODY, headers=headers)
            assert response.status_code == 200, response.text

        return await timed(N, step)


def over_http(key: SigningKey) -> list[float]:
    def build(base_url: str) -> Any:
        return create_app(settings(key, base_url), registry=registry())

    with serve_built(build, access_log=False) as (base, _app):
        signed = tokens(key, f"{base}/cds-services/{SERVICE}")
        with httpx.Client(base_url=base) as client:
            out = []
            for i in range(N + WARMUP):
                headers = {
                    "Authorization": f"Bearer {signed[i]}",
                    "Content-Type": "application/json",
                }
                started = time.perf_counter()
                response = client.post(f"/cds-services/{SERVICE}", content=BODY, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if i >= WARMUP:
                    out.append(elapsed)
            return out


def run() -> list[Row]:
    import logging

    logging.getLogger("cds_hooks").setLevel(logging.WARNING)
    key = generate_key("ES384")
    return [
        summarise(SECTION, "auth + parse + serialise (direct)", asyncio.run(direct(key)), 2.0),
        summarise(SECTION, "whole app in process (ASGI)", asyncio.run(in_process(key))),
        summarise(SECTION, "over HTTP, loopback uvicorn", over_http(key)),
    ]
