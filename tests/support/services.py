"""Test-only CDS services that exercise the protocol layer (they live here, never in the product).

- `every_feature_service()`: one card using every card feature, plus a system action; the
  card's detail reports what the handler received (prefetch keys, entry counts, unavailable
  keys, whether a FHIR client and a caller were given) so tests can see it over HTTP.
- `failing_service()`: raises, to show a bug answers 500.
- `searching_service()`: makes a further FHIR search through the call's FHIR client.
"""

from typing import Any

from cds_hooks import (
    Action,
    CallContext,
    Card,
    CdsRequest,
    CdsResponse,
    CdsService,
    Coding,
    Link,
    PrefetchData,
    PrefetchTemplate,
    Source,
    Suggestion,
)

EVERY_FEATURE_ID = "test-every-feature"
FAILING_ID = "test-failing"
SEARCHING_ID = "test-searching"

PREFETCH = {
    "patient": PrefetchTemplate("Patient/{{context.patientId}}"),
    "conditions": PrefetchTemplate("Condition?patient={{context.patientId}}"),
    "household": PrefetchTemplate("Group?member={{context.patientId}}", required=False),
}


def describe(prefetch: PrefetchData) -> str:
    """`key=what` for each prefetch value, sorted: what the handler was given."""
    parts = []
    for key in sorted(prefetch):
        value = prefetch[key]
        if value is None:
            parts.append(f"{key}=null")
        elif value.get("resourceType") == "Bundle":
            parts.append(f"{key}=Bundle({len(value.get('entry', ()))})")
        else:
            parts.append(f"{key}={value['resourceType']}")
    parts.extend(f"{key}=unavailable" for key in sorted(prefetch.unavailable))
    return " ".join(parts)


def every_feature_card(detail: str) -> Card:
    resource: dict[str, Any] = {"resourceType": "Task", "status": "requested", "intent": "order"}
    return Card(
        uuid="6b0f3c2e-8f6a-4b8e-9d39-2f0d3f7f4b11",
        summary="A card with every feature",
        detail=detail,
        indicator="warning",
        source=Source(
            label="Protocol test",
            url="https://example.org/source",
            icon="https://example.org/icon-100px.png",
            topic=Coding(system="https://example.org/topics", code="test", display="Test"),
        ),
        suggestions=[
            Suggestion(
                label="Do all three",
                uuid="2a3c8a0e-5f0b-4c1e-8f7e-0d1c2b3a4f5e",
                is_recommended=True,
                actions=[
                    Action(type="create", description="Create a task", resource=resource),
                    Action(
                        type="update", description="Update it", resource=resource | {"id": "t1"}
                    ),
                    Action(type="delete", description="Remove one", resource_id="Task/t0"),
                ],
            ),
            Suggestion(label="Do nothing", uuid="9b1d2c3e-4f5a-4b6c-8d7e-0f1a2b3c4d5e"),
        ],
        selection_behavior="at-most-one",
        override_reasons=[
            Coding(system="https://example.org/reasons", code="not-now", display="Not now")
        ],
        links=[
            Link(label="Read more", url="https://example.org/more", type="absolute"),
            Link(
                label="Open the app",
                url="https://example.org/launch",
                type="smart",
                app_context='{"card":"6b0f3c2e"}',
            ),
        ],
    )


async def _every_feature(
    request: CdsRequest, prefetch: PrefetchData, call: CallContext
) -> CdsResponse:
    detail = (
        f"{describe(prefetch)}; fhir={'yes' if call.fhir else 'no'}; "
        f"caller={call.caller.iss if call.caller else 'none'}; base={call.base_url}"
    )
    system_action = Action(
        type="create",
        description="Log that the card was shown",
        resource={"resourceType": "AuditEvent", "type": {"code": "shown"}},
    )
    return CdsResponse(cards=[every_feature_card(detail)], system_actions=[system_action])


async def _fail(request: CdsRequest, prefetch: PrefetchData, call: CallContext) -> CdsResponse:
    raise RuntimeError(f"a bug that mentions the patient {request.context.model_dump()}")


async def _search(request: CdsRequest, prefetch: PrefetchData, call: CallContext) -> CdsResponse:
    assert call.fhir is not None
    flags = await call.fhir.get("Flag?status=active")
    assert flags is not None
    count = len(flags.get("entry", ()))
    card = Card(summary=f"{count} active flags", indicator="info", source=Source(label="t"))
    return CdsResponse(cards=[card])


def every_feature_service() -> CdsService:
    return CdsService(
        id=EVERY_FEATURE_ID,
        hook="patient-view",
        title="Every card feature",
        description="Test service returning a card with every feature",
        prefetch=PREFETCH,
        usage_requirements="Tests only",
        handler=_every_feature,
    )


def failing_service() -> CdsService:
    return CdsService(
        id=FAILING_ID, hook="patient-view", description="Test service that fails", handler=_fail
    )


def searching_service() -> CdsService:
    return CdsService(
        id=SEARCHING_ID,
        hook="patient-view",
        description="Test service that searches the FHIR server itself",
        handler=_search,
    )


def protocol_test_services() -> list[CdsService]:
    return [every_feature_service(), failing_service(), searching_service()]
