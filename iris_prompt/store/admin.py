"""`GET /admin/analytics` for ICB leads, behind the admin token (as the code-set endpoints).

    GET /admin/analytics?since=2026-01-01&until=2026-04-01&by=category

Answers `analytics.report(...)` as JSON; a bad, unknown or repeated parameter gets 400 with an
OperationOutcome naming it; a missing or wrong token 401 with an empty body.
"""

import datetime
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from iris_prompt.store.analytics import report
from iris_prompt.store.fhir_audit import bearer_check
from iris_prompt.store.report_query import GROUPINGS, parse_day

__all__ = ["analytics_router"]

log = logging.getLogger(__name__)

PARAMETERS = ("since", "until", "by")


def _bad(name: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": message,
                    "expression": [name],
                }
            ],
        },
        status_code=400,
    )


def analytics_router(engine: Engine, admin_token: str | SecretStr) -> APIRouter:
    authorised = bearer_check(admin_token, "admin")
    router = APIRouter(tags=["admin"], redirect_slashes=False)

    @router.get("/admin/analytics")
    async def analytics(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        if not authorised(authorization):
            log.warning("analytics: request refused (missing or wrong token)")
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        params = request.query_params
        # A misspelt parameter ("sinse") would otherwise answer all-time figures as if asked.
        for name in params:
            if name not in PARAMETERS:
                return _bad(name, f"{name}: not a parameter ({', '.join(PARAMETERS)})")
            if len(params.getlist(name)) > 1:
                return _bad(name, f"{name}: given more than once")
        bounds: dict[str, datetime.datetime | None] = {"since": None, "until": None}
        for name in bounds:
            if name in params:
                try:
                    bounds[name] = parse_day(params[name])
                except ValueError:
                    return _bad(name, f"{name}: not a date (YYYY-MM-DD) or a dateTime with zone")
        by = params.get("by")
        if by is not None and by not in GROUPINGS:
            return _bad("by", f"by: one of {', '.join(GROUPINGS)}")
        figures = await run_in_threadpool(report, engine, by=by, **bounds)
        return JSONResponse(figures)

    return router
