"""httpx's calls and clients for tests, verifying TLS with the process's one context.

httpx makes a TLS context for every client it builds, loading the CA bundle each time (about
20 ms, more under coverage), even for a client that only ever speaks plain HTTP to a test
server on loopback. The tests build hundreds: these take `cds_hooks.transport.tls_context()`,
the one the service's own pools use, unless a test passes `verify` itself. Same names and
arguments as httpx's.
"""

from typing import Any

import httpx

from cds_hooks.transport import tls_context

__all__ = ["AsyncClient", "Client", "get", "post"]


def Client(**options: Any) -> httpx.Client:  # noqa: N802  # httpx's name
    return httpx.Client(**({"verify": tls_context()} | options))


def AsyncClient(**options: Any) -> httpx.AsyncClient:  # noqa: N802  # httpx's name
    return httpx.AsyncClient(**({"verify": tls_context()} | options))


def get(url: str, **options: Any) -> httpx.Response:
    return httpx.get(url, **({"verify": tls_context()} | options))


def post(url: str, **options: Any) -> httpx.Response:
    return httpx.post(url, **({"verify": tls_context()} | options))
