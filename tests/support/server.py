"""Run an ASGI app under a real uvicorn server on a free loopback port, in a background thread.

with serve(app) as base_url:
    httpx.get(f"{base_url}/healthz")

with serve_built(lambda base_url: create_app(settings_for(base_url))) as (base_url, app):
    ...   # for apps that must know their own public URL (the JWT `aud` check does)
"""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def _listener() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening (or has given up), so the harness waits
    on an event rather than polling `started`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.settled.set()

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            super().run(sockets=sockets)
        finally:
            self.settled.set()  # it stopped before listening (a failed lifespan start-up)


@contextmanager
def serve_built(
    make_app: Callable[[str], Any], *, access_log: bool = True, timeout: float = 10.0
) -> Iterator[tuple[str, Any]]:
    """Build the app for its base URL once the port is chosen, serve it, yield (base URL, app)."""
    sock, base_url = _listener()
    app = make_app(base_url)
    with _serving(app, sock, base_url, access_log=access_log, timeout=timeout):
        yield base_url, app


@contextmanager
def serve(app: Any, *, access_log: bool = True, timeout: float = 10.0) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while `app` is served; stop it afterwards."""
    sock, base_url = _listener()
    with _serving(app, sock, base_url, access_log=access_log, timeout=timeout):
        yield base_url


@contextmanager
def _serving(
    app: Any, sock: socket.socket, base_url: str, *, access_log: bool, timeout: float
) -> Iterator[None]:
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        ws="none",
        loop="auto",
        timeout_graceful_shutdown=1,
    )
    # loop="auto" picks uvloop, as `iris-prompt serve` does; with the plain asyncio loop in a
    # thread, each loopback response here waited about 40 ms (delayed ACKs), hiding real times.
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not server.settled.wait(timeout) or not server.started:
        server.should_exit = True
        raise RuntimeError("the test server did not start")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
