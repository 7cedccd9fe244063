"""The register's HTTP API: FHIR R4 Flag under /fhir, and the OAuth token endpoint.

    POST /oauth/token                         client credentials (auth.py), at most 16 KiB
    GET  /fhir/metadata                       CapabilityStatement (capability.py)
    GET  /fhir/StructureDefinition/mappa-register-flag   the profile (profile.py)
    POST /fhir/Flag                           201, version 1          system/Flag.write
    PUT  /fhir/Flag/{id}   If-Match: W/"n"    200, version n+1; 412 if n is not current
    GET  /fhir/Flag/{id}, /_history, /_history/{n}, GET /fhir/Flag?...   system/Flag.read

No delete (405): a flag ends with status inactive, or entered-in-error with a reason. A body
that is not a Flag of the profile gets 400 (not JSON, not a Flag) or 422 (the profile's rules)
with an OperationOutcome naming each bad field, and nothing is stored. No token, or one that is
not ours or has expired: 401; a token without the scope the call needs: 403.
"""

import datetime
import logging
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cds_hooks.errors import CdsHooksError, InvalidRequest, PayloadTooLarge
from cds_hooks.http import read_body, read_json
from cds_hooks.numbers import ascii_number
from iris_prompt.register.auth import Granted, TokenError, TokenService
from iris_prompt.register.capability import (
    SEARCH_PARAMETERS,
    capability_statement,
    smart_configuration,
)
from iris_prompt.register.clients import READ, WRITE
from iris_prompt.register.profile import (
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    Problem,
    check_flag,
)
from iris_prompt.register.repository import (
    FHIR_ID,
    FlagRegister,
    NotFound,
    RegisterError,
    Search,
    SubjectChanged,
    VersionConflict,
    WrongOrganisation,
)
from iris_prompt.register.structure import structure_definition
from iris_prompt.store.fhir_search import (
    BadParameter,
    date_bounds,
    given_once,
    page_size,
    refuse_nul,
    searchset,
)

__all__ = [
    "FHIR_JSON",
    "MAX_FLAG_BYTES",
    "MAX_TOKEN_BYTES",
    "outcome",
    "parse_search",
    "register_router",
]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
MAX_FLAG_BYTES = 64 * 1024
# A token request is a short form around one client assertion JWT (a few hundred bytes to a few
# KiB, with a certificate chain in its header).
MAX_TOKEN_BYTES = 16 * 1024
STATUSES = ("active", "inactive", "entered-in-error")
Clock = Callable[[], datetime.datetime]


def outcome(status: int, problems: list[Problem], code: str = "invalid") -> JSONResponse:
    issues = [
        {"severity": "error", "code": code, "diagnostics": p.message, "expression": [p.expression]}
        for p in problems
    ]
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=status,
        media_type=FHIR_JSON,
    )


def _resource(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def _token(value: str, system: str, name: str) -> str:
    """A token search value `system|code` (or just the code) for `system`."""
    given_system, bar, code = value.rpartition("|")
    if (bar and given_system != system) or not code:
        raise BadParameter(name, f"{name}: {system}|<value>")
    return code


def parse_search(params: list[tuple[str, str]]) -> Search:
    """The search a query string asks for; BadParameter names a parameter it cannot use."""
    unknown = sorted({name for name, _ in params} - set(SEARCH_PARAMETERS))
    if unknown:
        raise BadParameter(unknown[0], f"unknown search parameter(s): {', '.join(unknown)}")
    refuse_nul(params)

    def values(name: str) -> list[str]:
        return [v for n, v in params if n == name]

    def one(name: str) -> str | None:
        given_once(params, (name,))
        found = values(name)
        return found[0] if found else None

    subject = one("subject:identifier")
    author = one("author:identifier")
    statuses = tuple(s for v in values("status") for s in v.split(","))
    if any(s not in STATUSES for s in statuses):
        raise BadParameter("status", f"status: one of {', '.join(STATUSES)}")
    date_since, date_until = date_bounds(values("date"))
    updated_since, updated_until = date_bounds(values("_lastUpdated"), "_lastUpdated")
    review_since, review_until = date_bounds(values("review-date"), "review-date")
    count = page_size(one("_count"), default=100, most=1000)
    after = one("_after")
    if after is not None and not FHIR_ID.fullmatch(after):
        raise BadParameter("_after", "_after: the id of a flag, as a page's next link gives it")
    return Search(
        nhs_number=_token(subject, NHS_NUMBER_SYSTEM, "subject:identifier") if subject else None,
        statuses=statuses,
        author=_token(author, ODS_SYSTEM, "author:identifier") if author else None,
        date_since=date_since,
        date_until=date_until,
        updated_since=updated_since,
        updated_until=updated_until,
        review_since=review_since,
        review_until=review_until,
        count=count,
        after=after,
    )


def _version(if_match: str) -> int | None:
    """The version an If-Match header names (`W/"3"` or `"3"`), or None if malformed."""
    text = if_match.strip().removeprefix("W/").strip('"')
    return ascii_number(text, max_digits=9)


def _refused(error: RegisterError) -> JSONResponse:
    match error:
        case NotFound():
            return outcome(404, [Problem("Flag.id", "no such flag")], "not-found")
        case VersionConflict():
            return outcome(412, [Problem("If-Match", str(error))], "conflict")
        case WrongOrganisation():
            return outcome(403, [Problem("Flag.author", str(error))], "forbidden")
        case SubjectChanged():
            return outcome(422, [Problem("Flag.subject", str(error))], "business-rule")
    return outcome(400, [Problem("Flag", str(error))])  # pragma: no cover (no other kind)


def register_router(
    register: FlagRegister,
    tokens: TokenService,
    *,
    public_base_url: str | None,
    clock: Clock,
) -> APIRouter:
    router = APIRouter(tags=["register"], redirect_slashes=False)

    def base(request: Request) -> str:
        return (public_base_url or str(request.base_url)).rstrip("/")

    def granted(authorization: str | None, scope: str) -> Granted | Response:
        grant = tokens.check(authorization)
        if grant is None:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if scope not in grant.scopes:
            log.warning("register: %s lacks %s", grant.accessor.client_id, scope)
            return outcome(403, [Problem("scope", f"this call needs {scope}")], "forbidden")
        return grant

    async def flag_body(request: Request) -> dict[str, Any] | Response:
        # The protocol layer's reader: no further than MAX_FLAG_BYTES as the body streams in
        # (413), a JSON object (400), nested no deeper than the validators can walk (400).
        try:
            flag = await read_json(request, MAX_FLAG_BYTES)
        except CdsHooksError as error:
            problems = [Problem("Flag", issue.diagnostics) for issue in error.issues]
            return outcome(error.status, problems, error.issues[0].code)
        problems = check_flag(flag, now=clock())
        if problems:
            status = 400 if problems[0].expression == "Flag" else 422
            return outcome(status, problems, "invalid" if status == 400 else "processing")
        return dict(flag)

    @router.post("/oauth/token")
    async def token(request: Request) -> Response:
        # Anyone may call: the form is read no further than MAX_TOKEN_BYTES as it streams in.
        try:
            body = await read_body(request, MAX_TOKEN_BYTES)
            form = dict(parse_qsl(body.decode(), strict_parsing=True))
            answer = await tokens.issue(form, f"{base(request)}/oauth/token")
        except PayloadTooLarge:
            answer = None
            error = TokenError("invalid_request", f"over {MAX_TOKEN_BYTES} bytes", 413)
        except (InvalidRequest, UnicodeDecodeError, ValueError):
            answer = None
            error = TokenError("invalid_request", "an application/x-www-form-urlencoded body")
        except TokenError as refused:
            answer, error = None, refused
        if answer is None:
            return JSONResponse(
                {"error": error.error, "error_description": error.description},
                status_code=error.status,
                headers={"Cache-Control": "no-store"},
            )
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @router.get("/fhir/metadata")
    async def metadata(request: Request) -> Response:
        return _resource(capability_statement(f"{base(request)}/fhir", clock().date().isoformat()))

    @router.get("/fhir/.well-known/smart-configuration")
    async def smart(request: Request) -> Response:
        return JSONResponse(smart_configuration(f"{base(request)}/oauth/token"))

    @router.get("/fhir/StructureDefinition/mappa-register-flag")
    async def profile() -> Response:
        return _resource(structure_definition())

    @router.post("/fhir/Flag")
    async def create(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        grant = granted(authorization, WRITE)
        if isinstance(grant, Response):
            return grant
        flag = await flag_body(request)
        if isinstance(flag, Response):
            return flag
        try:
            stored = await run_in_threadpool(register.create, flag, grant.accessor, clock())
        except RegisterError as error:
            return _refused(error)
        log.info("register: flag created by %s", grant.accessor.client_id)
        location = f"{base(request)}/fhir/Flag/{stored['id']}/_history/1"
        return _resource(stored, 201, Location=location, ETag='W/"1"')

    @router.put("/fhir/Flag/{flag_id}")
    async def update(
        flag_id: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        grant = granted(authorization, WRITE)
        if isinstance(grant, Response):
            return grant
        if if_match is None:
            problem = Problem("If-Match", 'If-Match: W/"<versionId>" of the version replaced')
            return outcome(428, [problem], "required")
        expected = _version(if_match)
        if expected is None:
            return outcome(400, [Problem("If-Match", 'If-Match: W/"<versionId>"')])
        flag = await flag_body(request)
        if isinstance(flag, Response):
            return flag
        if flag.get("id") != flag_id:
            return outcome(400, [Problem("Flag.id", "the body's id must be the flag's id")])
        try:
            stored = await run_in_threadpool(
                register.update, flag_id, flag, expected, grant.accessor, clock()
            )
        except RegisterError as error:
            return _refused(error)
        version = stored["meta"]["versionId"]
        log.info("register: flag updated to version %s by %s", version, grant.accessor.client_id)
        return _resource(stored, ETag=f'W/"{version}"')

    @router.get("/fhir/Flag/{flag_id}")
    async def read(flag_id: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        grant = granted(authorization, READ)
        if isinstance(grant, Response):
            return grant
        try:
            flag = await run_in_threadpool(register.read, flag_id, grant.accessor, clock())
        except RegisterError as error:
            return _refused(error)
        return _resource(flag, ETag=f'W/"{flag["meta"]["versionId"]}"')

    @router.get("/fhir/Flag/{flag_id}/_history")
    async def history(
        flag_id: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        grant = granted(authorization, READ)
        if isinstance(grant, Response):
            return grant
        try:
            found = await run_in_threadpool(register.versions, flag_id, grant.accessor, clock())
        except RegisterError as error:
            return _refused(error)
        return _resource(_history(found, f"{base(request)}/fhir"))

    @router.get("/fhir/Flag/{flag_id}/_history/{version}")
    async def vread(
        flag_id: str, version: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        grant = granted(authorization, READ)
        if isinstance(grant, Response):
            return grant
        number = ascii_number(version, max_digits=9)
        if number is None:
            return _refused(NotFound(flag_id))
        try:
            [flag] = await run_in_threadpool(
                register.versions, flag_id, grant.accessor, clock(), number
            )
        except RegisterError as error:
            return _refused(error)
        # The stored version, never the path's text: the read is recorded by now, so what
        # answers it must not fail.
        return _resource(flag, ETag=f'W/"{flag["meta"]["versionId"]}"')

    @router.get("/fhir/Flag")
    async def search(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        grant = granted(authorization, READ)
        if isinstance(grant, Response):
            return grant
        try:
            criteria = parse_search(request.query_params.multi_items())
        except BadParameter as error:
            return outcome(400, [Problem(error.name, str(error))])
        found = await run_in_threadpool(register.search, criteria, grant.accessor, clock())
        fhir_base = f"{base(request)}/fhir"
        entries = [
            {
                "fullUrl": f"{fhir_base}/Flag/{flag['id']}",
                "resource": flag,
                "search": {"mode": "match"},
            }
            for flag in found.flags
        ]
        this_page = [("_count", str(criteria.count))]
        after = [("_after", criteria.after)] if criteria.after else []
        return _resource(
            searchset(
                entries,
                total=found.total,
                url=f"{fhir_base}/Flag",
                params=request.query_params.multi_items(),
                this_page=this_page + after,
                # The next page starts after this one's last flag.
                next_page=this_page + [("_after", found.flags[-1]["id"])] if found.more else None,
            )
        )

    return router


def _history(flags: list[dict[str, Any]], fhir_base: str) -> dict[str, Any]:
    """A flag's versions, the newest first, as a history Bundle: each the POST or PUT that
    made it."""
    entries = []
    for flag in flags:
        created = flag["meta"]["versionId"] == "1"
        entries.append(
            {
                "fullUrl": f"{fhir_base}/Flag/{flag['id']}",
                "resource": flag,
                "request": {
                    "method": "POST" if created else "PUT",
                    "url": "Flag" if created else f"Flag/{flag['id']}",
                },
                "response": {"status": "201" if created else "200"},
            }
        )
    return {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}
