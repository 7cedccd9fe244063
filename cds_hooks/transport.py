"""HTTP clients whose connection pool survives cancelled requests.

httpcore 1.0.9 (httpx's pool) leaks a connection slot whenever a request is cancelled after the
pool has made it a new connection but before that connection is opened: the connection is
neither idle, closed nor usable, and stays in the pool for good. Under contention (a household
lookup over its deadline cancels its queued reads) enough of them fill the pool, and every
later request fails with PoolTimeout until the process restarts (encode/httpcore#1093, fixed
upstream only in unmerged pull requests such as #1094). `pooled_client` gives an
`httpx.AsyncClient` whose transport reclaims such orphans whenever a request fails or is
cancelled: remove it once httpcore releases a fix (tests/unit/cds_hooks/test_fhir_client.py
makes a thousand requests time out or be cancelled, then fetches normally).
"""

import ssl
from functools import cache
from typing import Any

import httpcore
import httpx

__all__ = ["ReclaimingTransport", "pooled_client", "tls_context"]


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS client context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made
    once per process: loading the CA bundle takes about 20 ms, which each pool of each app would
    otherwise spend again at start-up."""
    return httpx.create_ssl_context()


class ReclaimingTransport(httpx.AsyncHTTPTransport):
    """An `AsyncHTTPTransport` that drops, after any failed or cancelled request, the pool's
    connections that were never opened and that no request waits for. Unless told otherwise it
    verifies TLS with the process's one default context (`tls_context`)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("verify", tls_context())
        super().__init__(**options)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except BaseException:
            self._reclaim_orphans()
            raise

    def _reclaim_orphans(self) -> None:
        pool = self._pool
        if not isinstance(pool, httpcore.AsyncConnectionPool):  # pragma: no cover  # a proxy
            return
        with pool._optional_thread_lock:
            owned = {id(r.connection) for r in pool._requests if r.connection is not None}
            for connection in list(pool._connections):
                if id(connection) not in owned and _never_opened(connection):
                    pool._connections.remove(connection)


def _never_opened(connection: Any) -> bool:
    return (
        isinstance(connection, httpcore.AsyncHTTPConnection)
        and connection._connection is None
        and not connection._connect_failed
    )


def pooled_client(limits: httpx.Limits, **options: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` over its own pool of `limits`, reclaiming orphaned connections."""
    return httpx.AsyncClient(transport=ReclaimingTransport(limits=limits), **options)
