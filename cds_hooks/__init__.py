"""CDS Hooks 2.0 protocol: models, discovery, invocation, prefetch, caller authentication.

Knows nothing about domestic abuse; a second, unrelated service can reuse it unchanged:
register `CdsService`s in a `ServiceRegistry` and include `build_router(...)` in a FastAPI app.
"""

from cds_hooks.auth import CallerIdentity, JwtPolicy, JwtVerifier, TrustedIssuer
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
from cds_hooks.models import (
    Action,
    Card,
    CdsRequest,
    CdsResponse,
    Coding,
    EncounterStartRequest,
    GenericRequest,
    Link,
    PatientViewRequest,
    Source,
    Suggestion,
    dump_json,
    parse_request,
)
from cds_hooks.prefetch import FhirClient, FhirLimits, PrefetchData, PrefetchTemplate
from cds_hooks.replay import InMemoryReplayCache, ReplayCache
from cds_hooks.router import ProtocolOptions, build_router

__all__ = [
    "Action",
    "AuthenticationFailed",
    "CallContext",
    "CallerIdentity",
    "Card",
    "CdsHooksError",
    "CdsRequest",
    "CdsResponse",
    "CdsService",
    "Coding",
    "EncounterStartRequest",
    "Feedback",
    "FeedbackStore",
    "FhirClient",
    "FhirLimits",
    "FhirUnavailable",
    "GenericRequest",
    "Handler",
    "Screen",
    "HookMismatch",
    "InMemoryFeedbackStore",
    "InMemoryReplayCache",
    "InvalidRequest",
    "JwtPolicy",
    "JwtVerifier",
    "Link",
    "PatientViewRequest",
    "PayloadTooLarge",
    "PrefetchData",
    "PrefetchTemplate",
    "PreconditionFailed",
    "ServiceBusy",
    "ProtocolOptions",
    "RedactingFilter",
    "ReplayCache",
    "ServiceNotFound",
    "ServiceRegistry",
    "Source",
    "Suggestion",
    "TrustedIssuer",
    "build_router",
    "dump_json",
    "parse_request",
]
