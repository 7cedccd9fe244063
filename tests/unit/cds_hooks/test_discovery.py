"""The service registry and discovery document."""

import orjson
import pytest

from cds_hooks.discovery import CdsService, ServiceRegistry
from cds_hooks.prefetch import PrefetchTemplate
from cds_hooks.response import CdsResponse


async def handler(*_args: object) -> CdsResponse:
    return CdsResponse()


def service(id_: str = "svc", hook: str = "patient-view", **kw: object) -> CdsService:
    kw.setdefault("description", "d")
    return CdsService(id=id_, hook=hook, handler=handler, **kw)  # type: ignore[arg-type]


def test_discovery_lists_every_field_and_no_nulls() -> None:
    registry = ServiceRegistry(
        [
            service(
                title="T",
                usage_requirements="U",
                prefetch={"p": PrefetchTemplate("Patient/{{context.patientId}}", required=False)},
                extension={"org.example.x": {"a": 1}},
            ),
            service("bare"),
        ]
    )
    assert orjson.loads(registry.discovery_json) == {
        "services": [
            {
                "hook": "patient-view",
                "title": "T",
                "description": "d",
                "id": "svc",
                "prefetch": {"p": "Patient/{{context.patientId}}"},
                "usageRequirements": "U",
                "extension": {"org.example.x": {"a": 1}},
            },
            {"hook": "patient-view", "description": "d", "id": "bare"},
        ]
    }


def test_empty_registry_is_an_empty_list() -> None:
    assert ServiceRegistry([]).discovery_json == b'{"services":[]}'


def test_one_id_may_serve_several_hooks_but_not_twice_the_same() -> None:
    registry = ServiceRegistry([service(), service(hook="encounter-start")])
    assert set(registry.hooks_of("svc") or {}) == {"patient-view", "encounter-start"}
    assert registry.hooks_of("nope") is None
    with pytest.raises(ValueError, match="registered twice"):
        ServiceRegistry([service(), service()])


@pytest.mark.parametrize("bad", ["", "has space", "slash/id", "q?x"])
def test_service_id_must_be_url_safe(bad: str) -> None:
    with pytest.raises(ValueError):
        service(bad)


def test_a_callable_description_is_asked_on_every_discovery() -> None:
    version = ["1.0.0"]
    registry = ServiceRegistry([service(description=lambda: f"data version {version[0]}")])
    assert orjson.loads(registry.discovery_json)["services"][0]["description"] == (
        "data version 1.0.0"
    )
    version[0] = "1.1.0"
    assert orjson.loads(registry.discovery_json)["services"][0]["description"] == (
        "data version 1.1.0"
    )
