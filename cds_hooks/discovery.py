"""The service registry and the discovery document built from it.

A service is registered once, with everything discovery advertises and the handler that answers
it; the router serves `GET /cds-services` and routes `POST /cds-services/{id}` from the same
registry, so what is advertised is what is served.

>>> async def greet(request, prefetch, call):
...     return CdsResponse()
>>> registry = ServiceRegistry([CdsService(
...     id="greeter", hook="patient-view", description="Hello", handler=greet,
...     prefetch={"patient": PrefetchTemplate("Patient/{{context.patientId}}")})])
>>> registry.discovery_json[:73]
b'{"services":[{"hook":"patient-view","description":"Hello","id":"greeter",'

Spec: https://cds-hooks.hl7.org/2.0/#discovery. The spec lets one id serve several hooks
(https://cds-hooks.hl7.org/2.0/#update-stale-guidance), so the registry keys on (id, hook).
"""

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from cds_hooks.models import OutboundModel, Text, dump_json
from cds_hooks.prefetch import PrefetchData, PrefetchTemplate
from cds_hooks.request import CdsRequest
from cds_hooks.response import CdsResponse

if TYPE_CHECKING:  # types only: the registry itself needs no HTTP client
    from cds_hooks.auth import CallerIdentity
    from cds_hooks.fhir import FhirClient

__all__ = [
    "CallContext",
    "CdsService",
    "DiscoveryResponse",
    "Handler",
    "Screen",
    "ServiceDescription",
    "ServiceRegistry",
]

SERVICE_ID = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True)
class CallContext:
    """What a handler may need beyond the request: never serialised, never logged whole.

    `fhir` is bound to this call's fhirServer and access token (None without a fhirServer);
    `base_url` is this service's public base URL (for links back to it); `caller` is the
    verified CDS client (None in local mode).
    """

    service_id: str
    hook_instance: str
    base_url: str
    fhir: "FhirClient | None"
    caller: "CallerIdentity | None"


Handler = Callable[[CdsRequest, PrefetchData, CallContext], Awaitable[CdsResponse]]
# Looks at the request alone, before any prefetch is fetched: a response ends the call there.
Screen = Callable[[CdsRequest, str], CdsResponse | None]


@dataclass(frozen=True)
class CdsService:
    """One registered CDS service: what discovery says about it, and its handler."""

    id: str
    hook: str
    # A callable is asked on every discovery request: for text that changes while the service
    # runs, such as the versions of the data it decides with.
    description: str | Callable[[], str]
    handler: Handler
    title: str | None = None
    prefetch: Mapping[str, PrefetchTemplate] = field(default_factory=dict)
    usage_requirements: str | None = None
    extension: Mapping[str, Any] | None = None
    # Called with the request and its hookInstance before prefetch is completed from the FHIR
    # server: a service that will not advise some callers answers them without reading (or
    # fetching) any of the record.
    screen: Screen | None = None

    def __post_init__(self) -> None:
        if not SERVICE_ID.match(self.id):
            raise ValueError(f"service id {self.id!r} must be URL-safe ([A-Za-z0-9._~-]+)")
        if not self.hook or not self.description:
            raise ValueError(f"service {self.id!r} needs a hook and a description")

    def describe(self) -> "ServiceDescription":
        description = self.description() if callable(self.description) else self.description
        return ServiceDescription(
            hook=self.hook,
            title=self.title,
            description=description,
            id=self.id,
            prefetch={key: t.query for key, t in self.prefetch.items()} or None,
            usage_requirements=self.usage_requirements,
            extension=dict(self.extension) if self.extension else None,
        )


class ServiceDescription(OutboundModel):
    hook: Text
    title: Text | None = None
    description: Text
    id: Text
    prefetch: dict[str, Text] | None = None
    usage_requirements: Text | None = None
    extension: dict[str, Any] | None = None


class DiscoveryResponse(OutboundModel):
    services: list[ServiceDescription] = Field(default_factory=list)


class ServiceRegistry:
    """The services one deployment offers, looked up by id and then by hook."""

    def __init__(self, services: Iterable[CdsService]) -> None:
        self._services: dict[str, dict[str, CdsService]] = {}
        for service in services:
            by_hook = self._services.setdefault(service.id, {})
            if service.hook in by_hook:
                raise ValueError(f"service {service.id!r} is registered twice for {service.hook}")
            by_hook[service.hook] = service
        self._dynamic = any(callable(s.description) for s in self)
        self._discovery = dump_json(self.discovery())

    def hooks_of(self, service_id: str) -> Mapping[str, CdsService] | None:
        """The services registered under `service_id`, by hook; None if there are none."""
        return self._services.get(service_id)

    def __iter__(self) -> Any:
        return (s for by_hook in self._services.values() for s in by_hook.values())

    def discovery(self) -> DiscoveryResponse:
        return DiscoveryResponse(services=[service.describe() for service in self])

    @property
    def discovery_json(self) -> bytes:
        """The discovery document, serialised once unless a description changes as it runs."""
        return dump_json(self.discovery()) if self._dynamic else self._discovery
