"""Errors of the CDS Hooks protocol layer and the one place they become HTTP responses.

Every error a call can meet derives from `CdsHooksError`::

    CdsHooksError
    ├── InvalidRequest          400  malformed JSON, a request or feedback the models refuse,
    │   └── HookMismatch        400  the body's `hook` is not the hook of the service called
    ├── AuthenticationFailed    401  the caller's JWT is missing or refused (empty body)
    ├── ServiceNotFound         404  no service with that id
    ├── PayloadTooLarge         413  the body is over the configured limit
    ├── PreconditionFailed      412  required FHIR data could not be had
    │   └── FhirUnavailable     412  the FHIR server could not give what was asked
    └── ServiceBusy             503  a safety limit is reached (the jti replay cache is full);
        └── ReplayStoreUnavailable   the shared replay store cannot be reached; Retry-After: 10

Anything else escaping a handler is a bug: `cds_hooks.http` answers 500 with an OperationOutcome
that names no patient and shows no stack trace. This module knows nothing of HTTP frameworks:
`cds_hooks.http` turns these errors into responses, in one place.

Spec: https://cds-hooks.hl7.org/2.0/#http-status-codes (4xx/5xx allowed; 412 for unobtainable
data). Error bodies are FHIR R4 OperationOutcome resources, as CDS Hooks 3.0 recommends.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = [
    "AuthenticationFailed",
    "CdsHooksError",
    "FhirUnavailable",
    "HookMismatch",
    "InvalidRequest",
    "Issue",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ReplayStoreUnavailable",
    "ServiceBusy",
    "ServiceNotFound",
    "issues_from_validation",
    "operation_outcome",
]


@dataclass(frozen=True)
class Issue:
    """One problem, as an OperationOutcome.issue. Never put patient data in `diagnostics`."""

    diagnostics: str
    code: str = "invalid"
    expression: str | None = None
    severity: str = "error"


class CdsHooksError(Exception):
    """Base of every protocol error; `status` is the HTTP status it is answered with."""

    status: int = 500
    code: str = "exception"

    def __init__(self, message: str, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues: tuple[Issue, ...] = tuple(issues) or (Issue(message, code=self.code),)


class InvalidRequest(CdsHooksError):
    status = 400
    code = "invalid"


class HookMismatch(InvalidRequest):
    pass


class AuthenticationFailed(CdsHooksError):
    """The reason is for the log only; the caller gets 401 with an empty body."""

    status = 401
    code = "security"


class ServiceNotFound(CdsHooksError):
    status = 404
    code = "not-found"


class PayloadTooLarge(CdsHooksError):
    status = 413
    code = "too-costly"


class PreconditionFailed(CdsHooksError):
    status = 412
    code = "incomplete"


class FhirUnavailable(PreconditionFailed):
    """The FHIR server refused, failed, timed out or answered beyond our limits."""


class FhirNotAsked(FhirUnavailable):
    """The FHIR server was not asked because of what the request itself says (no access token,
    a plain-http fhirServer): the reason tells the caller nothing of what answers where."""


class ServiceBusy(CdsHooksError):
    """We cannot take the call now (a safety limit is reached); the client may retry."""

    status = 503
    code = "transient"


class ReplayStoreUnavailable(ServiceBusy):
    """The shared jti replay store did not answer: a token cannot be checked, so it is not
    accepted (a client's retry with a fresh token succeeds once the store is back)."""


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """A FHIR R4 OperationOutcome listing `issues` (no nulls, no empty values)."""
    out = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.expression:
            entry["expression"] = [issue.expression]
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}


def issues_from_validation(
    error: ValidationError,
    *,
    drop_first: frozenset[str] = frozenset(),
    rename: Callable[[tuple[str | int, ...]], tuple[str | int, ...]] | None = None,
) -> list[Issue]:
    """One Issue per pydantic error, naming the field by its wire path and never echoing input.
    An item of a list is named by its index in brackets, as FHIRPath names it and as the
    store's and the register's own checks do: `feedback[1].outcomeTimestamp`. (A caller's
    prefetch key is named by position, `prefetch.[key 2]`, never by the key itself.)

    `drop_first` names union tags (such as the hook) that pydantic puts at the head of a path;
    `rename` rewrites a path (to name a caller-chosen key by its position, for example).
    """
    issues = []
    for err in error.errors(include_input=False, include_url=False):
        parts = tuple(err["loc"])
        if parts and parts[0] in drop_first:
            parts = parts[1:]
        if rename is not None:
            parts = rename(parts)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        message = err["msg"]
        issues.append(
            Issue(
                f"{where}: {message}" if where else message,
                code="invalid",
                expression=where or None,
            )
        )
    return issues
