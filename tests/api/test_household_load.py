"""A large household Group must not take the service down (issue 16).

Over real HTTP: the service under uvicorn, the project's test FHIR server holding a Group of
hundreds of members with a Patient and a Flag each. The service judges such a Group not a
household without reading any member, keeps answering /healthz while it is asked, and a normal
household lookup afterwards still works.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from iris_prompt.app import create_app
from iris_prompt.settings import Settings
from tests.api.engine_support import SERVICE_PATH, engine_registry, request_body
from tests.conftest import bundled_codesets
from tests.support import web
from tests.support.fhir_server import FhirTestServer
from tests.support.records import (
    DEPRESSIVE_DISORDER,
    bundle,
    condition,
    household_group,
    other_flag,
    patient,
)
from tests.support.server import serve

MUM = "mum"


def household_of(size: int) -> list[dict[str, Any]]:
    """The patient, and a Group of `size` others, each with a Patient and a (non-MAPPA) Flag."""
    members = [f"m{n}" for n in range(size)]
    found = [patient(MUM, "1990-01-01"), household_group(MUM, *members)]
    for member in members:
        found += [patient(member, "1985-01-01"), other_flag(member)]
    return found


def call_body(fhir_url: str, token: str, household: dict[str, Any] | None = None) -> Any:
    prefetch: dict[str, Any] = {
        "patient": patient(MUM, "1990-01-01"),
        "conditions": bundle(condition(DEPRESSIVE_DISORDER, "2026-10-01", patient=MUM)),
        "observations": None,
        "encounters": None,
        "procedures": None,
        "relatedPersons": None,
    }
    if household is not None:
        prefetch["household"] = household
    return request_body(MUM, prefetch=prefetch, fhir_server=fhir_url, token=token)


@contextmanager
def polling(url: str) -> Iterator[list[int]]:
    """GET `url` over and over in another thread while the block runs; yields the statuses
    (a poll that got no answer is recorded as 0)."""
    statuses: list[int] = []
    stop = threading.Event()
    first = threading.Event()

    def poll() -> None:
        with web.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    statuses.append(client.get(url).status_code)
                except httpx.HTTPError:
                    statuses.append(0)
                first.set()

    thread = threading.Thread(target=poll)
    thread.start()
    first.wait(10)
    try:
        yield statuses
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("size", [400, 1000])
def test_a_large_group_is_too_large_healthz_answers_and_the_next_lookup_works(size: int) -> None:
    fhir = FhirTestServer(household_of(size))
    settings = Settings(local_mode=True, fhir_allow_http=True)
    codesets = bundled_codesets()
    app = create_app(settings, registry=engine_registry(), codesets=codesets)
    with serve(fhir.app, access_log=False) as fhir_url, serve(app, access_log=False) as url:
        with polling(url + "/healthz") as statuses:
            # The Group is not prefetched: the lookup fetches it, as any FHIR server's answer.
            answer = web.post(url + SERVICE_PATH, json=call_body(fhir_url, "t1"), timeout=60)
        assert answer.status_code == 200, answer.text
        (card,) = answer.json()["cards"]
        assert "**The household is too large to check**" in card["detail"]
        assert statuses and set(statuses) == {200}  # every poll answered, none refused
        read = [r.path for r in fhir.requests]
        assert read == ["/Group"]  # not one member's Patient or Flag was read

        # A household of the largest size afterwards, with another token (nothing cached):
        # every member read, through the same connection pool.
        fhir.requests.clear()
        normal = household_group(MUM, *(f"m{n}" for n in range(20)))
        body = call_body(fhir_url, "t2", household=bundle(normal))
        after = web.post(url + SERVICE_PATH, json=body, timeout=60)
        (card,) = after.json()["cards"]
        assert "20 household members checked: no MAPPA flag in force." in card["detail"]
        assert len(fhir.requests) == 40


def test_fhir_reads_jwk_set_fetches_and_the_ehr_each_have_their_own_pool() -> None:
    """A flood of FHIR reads cannot take the connections that caller JWT checks need."""
    app = create_app(Settings(local_mode=True), codesets=bundled_codesets())
    clients = app.state.http_clients
    pools = {name: id(client._transport._pool) for name, client in clients.items()}
    assert len(set(pools.values())) == 3


def test_an_adult_with_nothing_else_to_show_is_told_the_household_was_too_large() -> None:
    """Rule 8: a Group too large to check is never silence, and the card gives the true reason."""
    fhir = FhirTestServer(household_of(25))
    app = create_app(
        Settings(local_mode=True), registry=engine_registry(), codesets=bundled_codesets()
    )
    body = call_body(
        "", "t1", household=bundle(household_group(MUM, *(f"m{n}" for n in range(25))))
    )
    body["prefetch"]["conditions"] = None
    with serve(fhir.app, access_log=False) as fhir_url, serve(app, access_log=False) as url:
        body["fhirServer"] = fhir_url
        answer = web.post(url + SERVICE_PATH, json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert card["indicator"] == "info"
    assert "the recorded household is too large to check" in card["detail"]
    assert fhir.requests == []  # not one member read
