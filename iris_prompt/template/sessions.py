"""Server-side sessions of a SMART launch: tokens and the patient never leave the server.

A session lives in memory, in this process only, for a short idle time (each use restarts it),
and ends after filing. The browser holds only a random session id in an `HttpOnly`, `Secure`,
`SameSite=Lax` cookie (Lax, because the EHR's redirect back to the callback is a top-level
navigation from another site; form posts from other sites never carry it).
"""

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from iris_prompt.template.smart import SmartConfig

__all__ = ["COOKIE", "Launch", "Session", "SessionStore"]

COOKIE = "iris_template_session"


@dataclass
class Launch:
    """An authorization under way: what the callback must match."""

    config: SmartConfig
    state: str
    verifier: str
    nonce: str


@dataclass
class Session:
    id: str
    csrf: str
    launch: Launch | None = None
    iss: str | None = None
    access_token: str | None = None
    token_expires_at: float = 0.0
    patient_id: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    banner: dict[str, str] = field(default_factory=dict)
    # The entries shown and not yet filed (a transaction Bundle), kept until filed.
    pending: dict[str, Any] | None = None
    # Where the EHR filed them, once filed: a second click on "File in the record", which waited
    # for the first, is shown the same filing.
    filed: tuple[str, ...] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def signed_in(self, now: float) -> bool:
        return self.access_token is not None and now < self.token_expires_at

    def sign_out(self) -> None:
        self.access_token = None
        self.token_expires_at = 0.0


class SessionStore:
    """At most `max_sessions` sessions, each ended after `idle_seconds` unused."""

    def __init__(
        self,
        idle_seconds: float,
        max_sessions: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: TTLCache[str, Session] = TTLCache(max_sessions, idle_seconds, timer=timer)

    def new(self) -> Session:
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions[session_id] = session  # each use restarts the idle time
        return session

    def holds(self, session: Session) -> bool:
        """Whether `session` is still kept: not ended (filed) or timed out since it was read."""
        return self._sessions.get(session.id) is session

    def renew(self, session: Session, *, new_form: bool = True) -> None:
        """Give `session` a new id at each sign-in: an id someone knew before it (a cookie fixed
        in the browser) is worth nothing after it. With `new_form`, a new CSRF token too: a
        form shown before the sign-in (another window, perhaps another patient's) cannot record
        under it."""
        self._sessions.pop(session.id, None)
        session.id = secrets.token_urlsafe(32)
        if new_form:
            session.csrf = secrets.token_urlsafe(32)
        self._sessions[session.id] = session

    def end(self, session: Session) -> None:
        session.sign_out()
        session.pending = None
        self._sessions.pop(session.id, None)

    def __len__(self) -> int:
        return len(self._sessions)
