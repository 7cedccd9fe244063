"""Property-based fuzzing (issue 16): valid requests and FHIR answers, mutated, never get a 500.

Bounded (a few dozen examples each, no shrinking deadline) so that `make test` stays fast.
"""

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks.errors import PreconditionFailed
from cds_hooks.fhir import FhirClient, FhirLimits, resolve_prefetch
from cds_hooks.prefetch import PrefetchTemplate
from tests.api.engine_support import SERVICE_PATH, engine_registry, prefetch_for, record
from tests.conftest import LiveService, bundled_codesets, live, make_settings, patient_view
from tests.support.tokens import SigningKey

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value: object keys and list positions, depth first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def mutated(value: Any, data: st.DataObject) -> Any:
    """`value` with one place replaced by any JSON value (or removed, for an object key)."""
    value = copy.deepcopy(value)
    places = [p for p in paths(value) if p]
    place = data.draw(st.sampled_from(places))
    parent = value
    for step in place[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[place[-1]]
    else:
        parent[place[-1]] = data.draw(json_values)
    return value


@pytest.fixture(scope="module")
def service(request: pytest.FixtureRequest) -> Iterator[LiveService]:
    from tests.support.tokens import generate_key

    key: SigningKey = generate_key("ES384")

    def build(base_url: str) -> Any:
        from iris_prompt.app import create_app

        settings_ = make_settings(key, public_base_url=base_url)
        return create_app(settings_, registry=engine_registry(), codesets=bundled_codesets())

    with live(build, key) as running:
        yield running


SEED = record("seed-case")
VALID = patient_view(prefetch=prefetch_for(SEED, "seed-mum")) | {
    "context": {"userId": "Practitioner/gp1", "patientId": "seed-mum"}
}


@FUZZ
@given(data=st.data())
def test_a_mutated_request_never_gets_a_500(service: LiveService, data: st.DataObject) -> None:
    body = mutated(VALID, data)
    answer = service.post(SERVICE_PATH, body)
    assert answer.status_code in (200, 400, 412), answer.text
    if answer.status_code != 200:
        assert answer.json()["resourceType"] == "OperationOutcome"


BUNDLE = {
    "resourceType": "Bundle",
    "type": "searchset",
    "link": [{"relation": "self", "url": "https://fhir.example/Condition?patient=p1"}],
    "entry": [{"resource": r} for r in SEED if r["resourceType"] == "Condition"],
}


@FUZZ
@given(data=st.data())
def test_a_mutated_fhir_answer_is_used_or_a_412_never_a_fault(data: st.DataObject) -> None:
    answer = mutated(BUNDLE, data)
    # A MockTransport stands in for a FHIR server giving answers no real server gives.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    templates = {"conditions": PrefetchTemplate("Condition?patient={{context.patientId}}")}

    async def run() -> Any:
        async with httpx.AsyncClient(transport=transport) as http:
            fhir = FhirClient(http, "https://fhir.example", "t", FhirLimits(allow_private=True))
            return await resolve_prefetch(templates, {}, {"context.patientId": "p1"}, fhir)

    try:
        asyncio.run(run())
    except PreconditionFailed as refused:
        assert refused.status == 412
