"""Audit records as FHIR R4 AuditEvents, after IHE Basic Audit Log Patterns (BALP) "Read".

    GET /fhir/AuditEvent?entity=Flag/f1&patient=Patient/p1&agent=Practitioner/u1&date=ge2026-01-01

Only for the auditor credential (`IRIS_AUDITOR_TOKEN`, a bearer token compared in constant
time; never the clinical caller JWT). Each record is one AuditEvent: the clinician as the
requesting agent (the information recipient), this service as the source, the patient in
context, and each flag disclosed as an entity (with the member's relationship). Answers a
searchset Bundle a page at a time, newest first (`store.fhir_search`: `_count`, `_offset`, a
`next` link while more remain); a bad parameter gets 400 with an OperationOutcome naming it.

BALP: https://profiles.ihe.net/ITI/BALP/ (Basic Audit Log Patterns)
"""

import datetime
import functools
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from iris_prompt.settings import SECRET_LENGTHS
from iris_prompt.store.audit import AuditFilters, AuditLog
from iris_prompt.store.fhir_search import (
    BadParameter,
    date_bounds,
    given_once,
    page_offset,
    page_size,
    refuse_nul,
    searchset,
)
from iris_prompt.store.models import AuditEvent

__all__ = [
    "OtherReader",
    "audit_event",
    "audit_router",
    "bearer_check",
    "outcome",
]

log = logging.getLogger(__name__)

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
# The settings refuse a shorter one first; checked again for a router built without them.
MIN_TOKEN_LENGTH = SECRET_LENGTHS["auditor_token"]
OBSERVER = "iris-prompt"


def bearer_check(token: str | SecretStr, what: str) -> Any:
    """A function telling whether an Authorization header carries `token` (constant time)."""
    secret = token.get_secret_value() if isinstance(token, SecretStr) else token
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the {what} token must be at least {MIN_TOKEN_LENGTH} characters")
    expected = hashlib.sha256(secret.encode()).digest()

    def authorised(authorization: str | None) -> bool:
        scheme, _, presented = (authorization or "").partition(" ")
        same = hmac.compare_digest(hashlib.sha256(presented.strip().encode()).digest(), expected)
        return scheme.lower() == "bearer" and same

    return authorised


def _instant(value: datetime.datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _patient_ref(patient: str) -> str:
    return patient if "/" in patient else f"Patient/{patient}"


def audit_event(row: AuditEvent) -> dict[str, Any]:
    """One audit record as an R4 AuditEvent resource."""
    what = "MAPPA flag" if row.kind == "mappa" else "known-abuse card"
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": _patient_ref(row.patient)},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
    ]
    for flag in row.entities:
        entity: dict[str, Any] = {
            "what": {"reference": flag},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            "name": what,
        }
        if row.relationship:
            entity["detail"] = [{"type": "relationship", "valueString": row.relationship}]
        entities.append(entity)
    entities.append(
        {
            "what": {
                "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{row.card_uuid}"}
            },
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "name": f"CDS Hooks card ({row.kind})",
            "detail": [
                {"type": "hookInstance", "valueString": row.hook_instance},
                {"type": "hook", "valueString": row.hook},
                {"type": "service", "valueString": row.service_id},
            ],
        }
    )
    user: dict[str, Any] = {
        "type": {
            "coding": [
                {"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}
            ]
        },
        "who": {"reference": row.user_id},
        "requestor": True,
    }
    if row.issuer:
        user["who"]["identifier"] = {"system": row.issuer, "value": row.tenant or row.issuer}
    source: dict[str, Any] = {
        "observer": {"display": OBSERVER},
        "type": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }
        ],
    }
    if row.fhir_server:
        source["site"] = row.fhir_server
    return {
        "resourceType": "AuditEvent",
        "id": row.card_uuid,
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [
            {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
        ],
        "action": "R",
        "recorded": _instant(row.recorded),
        "outcome": "0",
        "purposeOfEvent": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "TREAT",
                        "display": "treatment",
                    }
                ]
            }
        ],
        "agent": [
            user,
            {
                "type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
                "who": {"display": OBSERVER},
                "requestor": False,
            },
        ],
        "source": source,
        "entity": entities,
    }


def outcome(status: int, diagnostics: str, expression: str | None = None) -> JSONResponse:
    issue: dict[str, Any] = {"severity": "error", "code": "invalid", "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]},
        status_code=status,
        media_type="application/fhir+json",
    )


SEARCH_PARAMETERS = frozenset({"entity", "patient", "agent", "date", "_count", "_offset"})


# Another credential's view of /fhir/AuditEvent (the register's access log for a flag's
# owner): a response, or None when the request does not carry that credential.
OtherReader = Callable[[Request], Awaitable[Response | None]]


def audit_router(
    audit: AuditLog,
    auditor_token: str | SecretStr | None,
    base_url: str | None,
    other: OtherReader | None = None,
) -> APIRouter:
    """`GET /fhir/AuditEvent` for the auditor token (every record), and for `other`'s own
    credential (what it answers) when the auditor token is not the one presented."""
    authorised = bearer_check(auditor_token, "auditor") if auditor_token else lambda _: False
    router = APIRouter(tags=["audit"], redirect_slashes=False)

    @router.get("/fhir/AuditEvent")
    async def search(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        if not authorised(authorization):
            answer = await other(request) if other is not None else None
            if answer is not None:
                return answer
            log.warning("audit search refused (missing or wrong auditor token)")
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        params = request.query_params
        unknown = sorted(set(params) - SEARCH_PARAMETERS)
        if unknown:
            return outcome(400, f"unknown search parameter(s): {', '.join(unknown)}", unknown[0])
        try:
            refuse_nul(params.multi_items())
            given_once(params.multi_items(), ("entity", "patient", "agent", "_count", "_offset"))
            since, until = date_bounds(params.getlist("date"))
            count = page_size(params.get("_count"), default=1000, most=5000)
            offset = page_offset(params.get("_offset"))
        except BadParameter as error:
            return outcome(400, str(error), error.name)
        filters: AuditFilters = {
            "entity": params.get("entity"),
            "patient": params.get("patient"),
            "agent": params.get("agent"),
            "since": since,
            "until": until,
        }
        rows = await run_in_threadpool(
            functools.partial(audit.search, **filters, limit=count, offset=offset)
        )
        total = await run_in_threadpool(functools.partial(audit.count, **filters))
        log.info("audit search answered: %d of %d event(s)", len(rows), total)
        base = (base_url or str(request.base_url)).rstrip("/")
        entries = [
            {
                "fullUrl": f"{base}/fhir/AuditEvent/{row.card_uuid}",
                "resource": audit_event(row),
                "search": {"mode": "match"},
            }
            for row in rows
        ]
        more = offset + count < total
        bundle = searchset(
            entries,
            total=total,
            url=f"{base}/fhir/AuditEvent",
            params=params.multi_items(),
            this_page=[("_count", str(count)), ("_offset", str(offset))],
            next_page=[("_count", str(count)), ("_offset", str(offset + count))] if more else None,
        )
        return JSONResponse(bundle, media_type="application/fhir+json")

    return router
