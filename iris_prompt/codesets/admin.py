"""The authenticated admin endpoints for code sets: reload now, and see what is live.

    POST /admin/codesets/reload    check the folder and make it live (200), or keep the live
                                   version and list the errors (422)
    GET  /admin/codesets           live versions and the last reload's outcome

With several worker processes (`iris-prompt serve --workers N`) a reload that went live in the
worker that took the request also asks the main process (SIGHUP) to replace every worker, one by
one, so that all of them serve the checked folder: no two calls are decided on different code
sets for longer than the replacement takes.

Both need `Authorization: Bearer <admin token>`; the token is compared in constant time and
never logged. Anything else gets 401 with an empty body. The service mounts this router with
the admin token from its settings (`app.include_router(admin_router(registry, token))`).
"""

import hashlib
import hmac
import logging
import os
import signal
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from iris_prompt.codesets.live import CodeSetRegistry
from iris_prompt.settings import SECRET_LENGTHS

__all__ = ["admin_router"]

log = logging.getLogger(__name__)
# The settings refuse a shorter one first; checked again for a router built without them.
MIN_TOKEN_LENGTH = SECRET_LENGTHS["admin_token"]


def admin_router(
    registry: CodeSetRegistry,
    admin_token: str | SecretStr,
    *,
    prefix: str = "/admin/codesets",
    several_workers: bool = False,
) -> APIRouter:
    """Build the router. Refuses a missing or short token: these endpoints are never open."""
    secret = admin_token.get_secret_value() if isinstance(admin_token, SecretStr) else admin_token
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the code-set admin token must be at least {MIN_TOKEN_LENGTH} characters")
    expected = hashlib.sha256(secret.encode()).digest()
    router = APIRouter(prefix=prefix, tags=["admin"], redirect_slashes=False)

    def authorised(authorization: str | None) -> bool:
        scheme, _, presented = (authorization or "").partition(" ")
        # Equal-length digests, compared in constant time: timing reveals neither where the
        # token differs nor its length.
        digest = hashlib.sha256(presented.strip().encode()).digest()
        same = hmac.compare_digest(digest, expected)
        return scheme.lower() == "bearer" and same

    def refused() -> Response:
        log.warning("code sets admin: request refused (missing or wrong token)")
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})

    # Plain `def` endpoints run in FastAPI's thread pool, so a reload never blocks the event loop.
    @router.post("/reload")
    def reload_codesets(authorization: Annotated[str | None, Header()] = None) -> Response:
        if not authorised(authorization):
            return refused()
        result = registry.reload()
        answer = result.as_json()
        if result.ok and several_workers:
            # uvicorn's main process replaces each worker on SIGHUP; each new one loads the
            # folder this worker has just checked.
            os.kill(os.getppid(), signal.SIGHUP)
            log.info("code sets reloaded: every worker is being replaced to serve them")
            answer["workers"] = "every worker is being replaced, one by one, to serve them"
        return JSONResponse(answer, status_code=200 if result.ok else 422)

    @router.get("")
    def codeset_status(authorization: Annotated[str | None, Header()] = None) -> Response:
        if not authorised(authorization):
            return refused()
        return JSONResponse(registry.status())

    return router
