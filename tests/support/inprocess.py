"""Call an ASGI app in this process, without a network: httpx's `ASGITransport`, driven from
synchronous tests through an event loop in a background thread, with the app's lifespan run.

    with in_process(app) as client:
        client.get("/healthz")

Use it wherever the network is not the point (request/response contracts); keep real servers
(`tests.support.server`) for I/O, signals, the browser and the real FHIR server.
"""

import asyncio
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from functools import partial
from typing import Any

import anyio.from_thread
import httpx

BASE_URL = "https://iris.test"


class SyncClient:
    """The few httpx.Client methods the tests use, answered by the app in process."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client
        self.base_url = str(client.base_url).rstrip("/")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def concurrently(self, *calls: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
        """Requests (method, url, keyword arguments) sent at once, as a double click sends
        them; their answers in the same order."""

        async def send() -> list[httpx.Response]:
            return list(
                await asyncio.gather(
                    *(self._client.request(method, url, **kw) for method, url, kw in calls)
                )
            )

        return self._portal.call(send)


@contextmanager
def in_process(app: Any, base_url: str = BASE_URL) -> Iterator[SyncClient]:
    """A client for `app` (its lifespan started, and ended on exit)."""
    with anyio.from_thread.start_blocking_portal() as portal:
        lifespan: AbstractAsyncContextManager[Any] | None = None
        router = getattr(app, "router", None)
        if router is not None and hasattr(router, "lifespan_context"):
            lifespan = router.lifespan_context(app)
            portal.call(lifespan.__aenter__)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30)
        try:
            yield SyncClient(portal, client)
        finally:
            portal.call(client.aclose)
            if lifespan is not None:
                portal.call(lifespan.__aexit__, None, None, None)
