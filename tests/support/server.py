"""Run an ASGI app under a real uvicorn server on a free loopback port, in a background thread.

with serve(app) as base_url:
    httpx.get(f"{base_url}/healthz")

with serve_built(lambda base_url: create_app(settings_for(base_url))) as (base_url, app):
    ...   # for apps that must know their own public URL (the JWT `aud` check does)
"""

import asyncio
import contextlib
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


class _Watched(set[Any]):
    """uvicorn's set of open connections (or running tasks) that says when it empties: its
    protocols `discard` themselves when a connection is lost or a task is done."""

    def __init__(self) -> None:
        super().__init__()
        self._emptied = asyncio.Event()

    def discard(self, item: Any) -> None:
        super().discard(item)
        if not self:
            self._emptied.set()

    async def emptied(self) -> None:
        while self:
            self._emptied.clear()
            await self._emptied.wait()


class _Server(uvicorn.Server):
    """A uvicorn server run for a test: it says when it is listening (or has given up), and
    stops as soon as it is told to and its connections have closed. uvicorn's own loop looks
    for the exit flag every 0.1 s and sleeps 0.1 s more while shutting down, which cost the
    suite about 0.2 s for each of the hundreds of servers it starts; here both are events.
    (Written against uvicorn 0.54: `main_loop`, `shutdown` and `server_state` are its own.)"""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()
        self.server_state.connections = _Watched()
        self.server_state.tasks = _Watched()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()

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

    def stop(self) -> None:
        """Ask the server to stop, from any thread."""
        self.should_exit = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            # The tick keeps uvicorn's Date header current; a stop ends the wait at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # an idle keep-alive connection closes now, a busy one after
        connections = self.server_state.connections
        tasks = self.server_state.tasks
        assert isinstance(connections, _Watched) and isinstance(tasks, _Watched)
        try:
            await asyncio.wait_for(
                asyncio.gather(connections.emptied(), tasks.emptied()),
                self.config.timeout_graceful_shutdown,
            )
        except TimeoutError:
            for task in tasks:
                task.cancel()
        await self.lifespan.shutdown()


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
        server.stop()
        raise RuntimeError("the test server did not start")
    try:
        yield
    finally:
        server.stop()
        thread.join(timeout)
        sock.close()
