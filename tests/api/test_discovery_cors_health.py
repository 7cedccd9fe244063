"""Discovery, CORS for browser clients, and the health endpoints."""

import httpx
from fastapi import FastAPI

from iris_prompt.app import create_app
from iris_prompt.engine.service import ENCOUNTER_START_SERVICE_ID, SERVICE_ID
from tests.conftest import LiveService, live, make_registry, make_settings
from tests.support.server import serve_built
from tests.support.tokens import SigningKey


def test_discovery_at_the_spec_path(es384_key: SigningKey) -> None:
    # The product's own registry, as `iris-prompt serve` builds it.
    def build(base_url: str) -> FastAPI:
        return create_app(make_settings(es384_key, public_base_url=base_url))

    with live(build, es384_key) as service:
        response = service.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    # One id per hook: an id is the URL of its service, and clients key services by it.
    assert [(s["id"], s["hook"]) for s in services] == [
        (SERVICE_ID, "patient-view"),
        (ENCOUNTER_START_SERVICE_ID, "encounter-start"),
    ]
    for product in services:
        assert product["prefetch"] == {
            "patient": "Patient/{{context.patientId}}",
            "conditions": "Condition?patient={{context.patientId}}",
            "observations": "Observation?patient={{context.patientId}}",
            "encounters": "Encounter?patient={{context.patientId}}",
            "procedures": "Procedure?patient={{context.patientId}}",
            "household": "Group?member={{context.patientId}}",
            "relatedPersons": "RelatedPerson?patient={{context.patientId}}",
        }
        assert {"title", "description", "usageRequirements"} <= set(product)


def test_health_endpoints_need_no_jwt(live_service: LiveService) -> None:
    assert live_service.client.get("/healthz").json() == {"status": "ok"}
    ready = live_service.client.get("/readyz").json()
    assert ready["status"] == "ready"
    # The live code-set versions are visible to operators.
    assert ready["codesets"] == live_service.app.state.codesets.current.versions()
    live_service.app.state.readiness_checks["code sets loaded"] = lambda: False
    not_ready = live_service.client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["failing"] == ["code sets loaded"]


def test_cors_preflight_allows_authorization_for_listed_origins(es384_key: SigningKey) -> None:
    sandbox = "https://sandbox.cds-hooks.org"

    def build(base_url: str) -> FastAPI:
        settings = make_settings(es384_key, cors_allow_origins=[sandbox], public_base_url=base_url)
        return create_app(settings, registry=make_registry())

    with serve_built(build) as (base_url, _app):
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        allowed = httpx.options(
            f"{base_url}/cds-services/{SERVICE_ID}", headers=preflight | {"Origin": sandbox}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == sandbox
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = httpx.options(
            f"{base_url}/cds-services", headers=preflight | {"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_unless_configured(live_service: LiveService) -> None:
    response = live_service.client.options(
        "/cds-services",
        headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers
