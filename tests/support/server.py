"""Run an ASGI app under a real uvicorn server on a free loopback port, in a background thread.

with serve(app) as base_url:
    httpx.get(f"{base_url}/healthz")

with serve_built(lambda base_url: create_app(settings_for(base_url))) as (base_url, app):
    ...   # for apps that must know their own public URL (the JWT `aud` check does)
"""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def _listener() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


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
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
