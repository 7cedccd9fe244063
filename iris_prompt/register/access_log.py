"""A flag's access log for the organisation that authored it, as CP-IS gives a child
protection plan's owner: where and when the flag was seen.

    GET /fhir/AuditEvent?entity=Flag/{id}      Authorization: Bearer <register access token>

Answered only to a token of the flag's own organisation (any other: 403; a flag that does not
exist: 404). Each entry is an R4 AuditEvent: a disclosure in a household card (from the store's
disclosure audit, whose entity is the flag's register URL) names the practice (the CDS client's
issuer and tenant) and when; a read through the API names the client and its organisation, the
interaction and the version read. The patient whose record was open and the clinician are not
given: the owner needs where its flag went, not whose record it was shown in.
"""

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from iris_prompt.register.api import FHIR_JSON, outcome
from iris_prompt.register.auth import TokenService
from iris_prompt.register.profile import ODS_SYSTEM, Problem
from iris_prompt.register.repository import FlagRegister
from iris_prompt.register.tables import RegisterAccess
from iris_prompt.store.audit import AuditLog
from iris_prompt.store.fhir_audit import AUDIT_TYPE, OBSERVER
from iris_prompt.store.models import AuditEvent

__all__ = ["access_log_reader"]

RESTFUL = "http://hl7.org/fhir/restful-interaction"


def _instant(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _event(
    event_id: str,
    recorded: datetime.datetime,
    interaction: str,
    who: dict[str, Any],
    what: str,
    purpose: str,
) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": RESTFUL, "code": interaction}],
        "action": "R",
        "recorded": _instant(recorded),
        "outcome": "0",
        "purposeOfEvent": [{"text": purpose}],
        "agent": [who | {"requestor": True}],
        "source": {"observer": {"display": OBSERVER}},
        "entity": [{"what": {"reference": what}}],
    }


def _disclosure(row: AuditEvent, reference: str) -> dict[str, Any]:
    practice = row.tenant or row.issuer or "unknown CDS client"
    who = {
        "who": {"identifier": {"system": row.issuer or "urn:iris-prompt:local", "value": practice}}
    }
    return _event(row.card_uuid, row.recorded, "read", who, reference, "shown in a household card")


def _read(row: RegisterAccess, reference: str) -> dict[str, Any]:
    who = {
        "who": {"identifier": {"system": ODS_SYSTEM, "value": row.organisation}},
        "altId": row.client_id,
    }
    what = f"{reference}/_history/{row.version}"
    return _event(f"register-access-{row.id}", row.at, row.interaction, who, what, "register API")


def access_log_reader(
    register: FlagRegister, tokens: TokenService, audit: AuditLog
) -> Callable[[Request], Awaitable[Response | None]]:
    """The register's reader of /fhir/AuditEvent (`store.fhir_audit.audit_router`'s `other`)."""

    async def read(request: Request) -> Response | None:
        grant = tokens.check(request.headers.get("authorization"))
        if grant is None:
            return None
        params = request.query_params
        entity = params.get("entity", "")
        flag_id = entity.removeprefix(f"{register.base_url}/").removeprefix("Flag/")
        if (
            set(params) != {"entity"}
            or not entity.startswith(("Flag/", register.base_url))
            or "\x00" in entity  # PostgreSQL refuses it in text; no flag id holds one
        ):
            problem = Problem("entity", "give entity=Flag/{id}, and nothing else")
            return outcome(400, [problem])
        owner = await run_in_threadpool(register.owner, flag_id)
        if owner is None:
            return outcome(404, [Problem("entity", "no such flag")], "not-found")
        if owner != grant.accessor.organisation:
            problem = Problem("entity", "only the organisation that authored a flag reads its log")
            return outcome(403, [problem], "forbidden")
        reference = register.reference(flag_id)
        reads = await run_in_threadpool(register.reads_of, flag_id)
        shown = await run_in_threadpool(audit.search, entity=reference, limit=100_000)
        events = [_disclosure(r, reference) for r in shown] + [_read(r, reference) for r in reads]
        events.sort(key=lambda e: str(e["recorded"]), reverse=True)
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(events),
        }
        if events:  # FHIR JSON has no empty arrays
            bundle["entry"] = [{"resource": e, "search": {"mode": "match"}} for e in events]
        return JSONResponse(bundle, media_type=FHIR_JSON)

    return read
