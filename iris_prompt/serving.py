"""Serving over HTTP: uvicorn's options, and slow clients cut off.

uvicorn closes an idle keep-alive connection, but waits for ever for a request's headers or
body: a few hundred connections trickling a byte at a time would hold the service's sockets
(measured: 300 held for 60 s, none closed). `GuardedHttpToolsProtocol` closes a connection
whose request headers are not complete `header_timeout` seconds after the request began (or
the connection opened), or whose body is not complete `body_timeout` seconds after its
headers. The app sees a body cut short as a disconnect (`cds_hooks.http.read_json`).
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from iris_prompt.settings import Settings

__all__ = ["GuardedHttpToolsProtocol", "guarded_protocol", "uvicorn_options"]


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.logger.warning("closed a connection: request not received in time")
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
    """The protocol class with these deadlines, for uvicorn's `http` option."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )


WORKER_READY_SECONDS = 30


def uvicorn_options(settings: Settings, *, by_name: bool = False) -> dict[str, Any]:
    """uvicorn's options for `iris-prompt serve`. `by_name`: the protocol named as an import
    string (worker processes import it, with the deadlines of their own settings)."""
    http: Any = guarded_protocol(settings.header_timeout_seconds, settings.body_timeout_seconds)
    return {
        "host": settings.host,
        "port": settings.port,
        "http": f"{__name__}:SettingsGuardedProtocol" if by_name else http,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        # SIGTERM: stop accepting, wait this long for calls in flight, then the app's shutdown.
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        # A replacement worker (a code-set reload replaces them all) may take this long to be
        # ready before the supervisor gives up on it and keeps the old one; uvicorn's 5 s is
        # short for a worker importing the app on a busy machine.
        "timeout_worker_healthcheck": WORKER_READY_SECONDS,
    }


def __getattr__(name: str) -> Any:
    """`SettingsGuardedProtocol`: the guarded protocol with this process's settings' deadlines
    (uvicorn's worker processes import the protocol by name)."""
    if name == "SettingsGuardedProtocol":
        from iris_prompt.settings import get_settings

        settings = get_settings()
        return guarded_protocol(settings.header_timeout_seconds, settings.body_timeout_seconds)
    raise AttributeError(name)
