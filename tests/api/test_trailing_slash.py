"""A path with a trailing slash is a plain 404, never a redirect: Starlette's redirect_slashes
answered `POST /cds-services/<id>/` and `GET /rules/` with a 307 to `http://<Host header>/...`,
an open redirect that a client following it answers with its JWT and the record, over http."""

import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from iris_prompt.app import create_app
from iris_prompt.engine.service import SERVICE_ID
from iris_prompt.register.service import Register
from iris_prompt.store.service import Store
from tests.api.register_support import probation
from tests.api.store_support import ADMIN, AUDITOR
from tests.conftest import LiveService, live, make_settings
from tests.support import web
from tests.support.tokens import SigningKey

EVIL = {"Host": "evil.example"}


def every_route_app(key: SigningKey, store: Store, base_url: str) -> FastAPI:
    """The app with every optional router on: admin, audit and the register."""
    settings = make_settings(
        key,
        public_base_url=base_url,
        auditor_token=AUDITOR,
        admin_token=ADMIN,
        register_clients=[probation.client()],
    )
    register = Register.open(
        store, fhir_base=f"{base_url}/fhir", clients=[probation.client()], http=web.AsyncClient()
    )
    return create_app(settings, store=store, register=register)


def routes(listed: list[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of every route, through included routers, path parameters filled in."""
    found = []
    for route in listed:
        if isinstance(route, APIRoute):
            path = re.sub(r"\{[^}]+\}", "x1", route.path)
            found += [(method, path) for method in sorted(route.methods)]
        elif isinstance(inner := getattr(route, "original_router", None), APIRouter):
            found += routes(inner.routes)
    return found


def test_no_route_redirects_to_the_host_header(es384_key: SigningKey, store: Store) -> None:
    with live(lambda url: every_route_app(es384_key, store, url), es384_key) as service:
        listed = routes(service.app.routes)
        assert ("POST", "/cds-services/x1") in listed and ("GET", "/rules") in listed
        assert ("GET", "/fhir/AuditEvent") in listed and ("PUT", "/fhir/Flag/x1") in listed
        answers = {
            (method, path + "/"): service.client.request(method, path + "/", headers=EVIL)
            for method, path in listed
            if path != "/"
        }
    redirected = {
        call: (r.status_code, r.headers.get("location"))
        for call, r in answers.items()
        if r.is_redirect or "location" in r.headers
    }
    assert redirected == {}
    assert {r.status_code for r in answers.values()} <= {404, 405}
    # Each refusal is an OperationOutcome, as every other error of the service is.
    assert {r.json()["resourceType"] for r in answers.values()} == {"OperationOutcome"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "allow"),
    [
        ("GET", "/no-such-path", 404, "not-found", None),
        ("POST", "/cds-services/no/such/service/path", 404, "not-found", None),
        ("DELETE", f"/cds-services/{SERVICE_ID}", 405, "not-supported", "POST"),
        ("GET", f"/cds-services/{SERVICE_ID}", 405, "not-supported", "POST"),
        # Two routes share this path; the router alone would name the first one's method.
        ("PATCH", "/fhir/Flag/x1", 405, "not-supported", "GET, PUT"),
        ("POST", "/fhir/Flag/x1", 405, "not-supported", "GET, PUT"),
        ("DELETE", "/fhir/Flag/x1", 405, "not-supported", "GET, PUT"),  # flags are ended
    ],
)
def test_an_unknown_path_or_method_gets_an_operation_outcome(
    live_service: LiveService, method: str, path: str, status: int, code: str, allow: str | None
) -> None:
    """Not the web framework's own `{"detail": "Not Found"}`: a client's error handling reads
    one shape of error from the service. A 405 names in Allow every method the path answers
    (RFC 9110 section 15.5.6), so a client can tell which one to use."""
    response = live_service.client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["cache-control"] == "no-store"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in outcome["issue"]] == [code]
    assert response.headers.get("allow") == allow


@pytest.mark.parametrize(
    ("method", "path"), [("POST", f"/cds-services/{SERVICE_ID}/"), ("GET", "/rules/")]
)
def test_the_reported_paths_are_404(live_service: LiveService, method: str, path: str) -> None:
    response = live_service.client.request(method, path, headers=EVIL)
    assert response.status_code == 404
    assert "location" not in response.headers


@pytest.mark.parametrize("method", ["PATCH", "POST", "DELETE"])
def test_every_method_a_405_names_in_allow_is_answered(
    es384_key: SigningKey, store: Store, method: str
) -> None:
    """Allow lists what the path supports (RFC 9110 section 15.5.6): a client that tries each
    method it names is not refused for the method again."""
    with live(lambda url: every_route_app(es384_key, store, url), es384_key) as service:
        refused = service.client.request(method, "/fhir/Flag/x1")
        named = refused.headers["allow"].split(", ")
        again = {m: service.client.request(m, "/fhir/Flag/x1").status_code for m in named}
    assert refused.status_code == 405
    assert named and {m: status for m, status in again.items() if status == 405} == {}
