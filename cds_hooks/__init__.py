"""CDS Hooks 2.0 protocol: models, discovery, prefetch, caller authentication, feedback.

Knows nothing about domestic abuse; a second, unrelated service can reuse it unchanged:
register `CdsService`s in a `ServiceRegistry`, include `cds_hooks.http.build_router(...)` in a
FastAPI app and call `cds_hooks.http.install_error_handlers(app)`.

Importing this package loads neither a web framework nor an HTTP client: the web layer is
`cds_hooks.http`, the FHIR client `cds_hooks.fhir`, caller JWT checks `cds_hooks.auth`.
"""

from cds_hooks.discovery import CallContext, CdsService, Handler, Screen, ServiceRegistry
from cds_hooks.errors import (
    AuthenticationFailed,
    CdsHooksError,
    FhirUnavailable,
    HookMismatch,
    InvalidRequest,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceBusy,
    ServiceNotFound,
)
from cds_hooks.feedback import Feedback, FeedbackStore, InMemoryFeedbackStore
from cds_hooks.logs import RedactingFilter
from cds_hooks.models import dump_json
from cds_hooks.prefetch import PrefetchData, PrefetchTemplate
from cds_hooks.replay import InMemoryReplayCache, ReplayCache
from cds_hooks.request import (
    CdsRequest,
    EncounterStartRequest,
    GenericRequest,
    PatientViewRequest,
    parse_request,
)
from cds_hooks.response import Action, Card, CdsResponse, Coding, Link, Source, Suggestion

__all__ = [
    "Action",
    "AuthenticationFailed",
    "CallContext",
    "Card",
    "CdsHooksError",
    "CdsRequest",
    "CdsResponse",
    "CdsService",
    "Coding",
    "EncounterStartRequest",
    "Feedback",
    "FeedbackStore",
    "FhirUnavailable",
    "GenericRequest",
    "Handler",
    "HookMismatch",
    "InMemoryFeedbackStore",
    "InMemoryReplayCache",
    "InvalidRequest",
    "Link",
    "PatientViewRequest",
    "PayloadTooLarge",
    "PrefetchData",
    "PrefetchTemplate",
    "PreconditionFailed",
    "RedactingFilter",
    "ReplayCache",
    "Screen",
    "ServiceBusy",
    "ServiceNotFound",
    "ServiceRegistry",
    "Source",
    "Suggestion",
    "dump_json",
    "parse_request",
]
