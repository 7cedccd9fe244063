"""`make bench` keeps working: its bodies, its schedule and its reference app. (The timings
themselves belong to `make bench`, never to tests.)"""

from pathlib import Path

import orjson
import pytest

from benchmarks.engine import CLASSES, MIN_SAMPLES, _schedule, size_class
from benchmarks.engine_parts import PATH, PATIENTS, reference_app, request_bodies
from cds_hooks.request import parse_request
from tests.support import web
from tests.support.server import serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bodies(reference_dir: Path) -> list[bytes]:
    if not PATIENTS.is_dir():
        pytest.skip(f"no Synthea patients under {reference_dir}")
    return request_bodies(with_trigger=True)


def test_the_bodies_are_patient_views_in_every_size_class(bodies: list[bytes]) -> None:
    assert {size_class(body) for body in bodies} == {name for _, _, name in CLASSES}
    assert bodies == sorted(bodies, key=len)
    for body in (bodies[0], bodies[-1]):
        request = parse_request(orjson.loads(body))
        assert request.hook == "patient-view"
        assert set(request.prefetch or {}) >= {"patient", "conditions", "observations"}


def test_every_size_class_gets_its_samples(bodies: list[bytes]) -> None:
    timed = [body for counted, body in _schedule(bodies) if counted]
    for _, _, name in CLASSES:
        assert sum(size_class(body) == name for body in timed) >= MIN_SAMPLES, name


def test_the_reference_app_parses_and_scans_codes(bodies: list[bytes]) -> None:
    with serve(reference_app()) as base:
        answer = web.post(base + PATH, content=bodies[0]).json()
    assert answer["cards"] == []
    assert answer["found"] >= 1  # the recent trigger every body carries in this pass


def test_the_register_section_seeds_valid_nhs_numbers_and_a_household_the_register_reads() -> None:
    from benchmarks.register import MEMBER_NUMBERS, nhs_numbers, resources
    from iris_prompt.register.profile import nhs_number_valid

    numbers = nhs_numbers(50)
    assert len(set(numbers)) == 50 and all(nhs_number_valid(n) for n in numbers)
    patients = [r for r in resources() if r["resourceType"] == "Patient" and r["id"] != "mum"]
    assert [p["identifier"][0]["value"] for p in patients] == list(MEMBER_NUMBERS.values())  # type: ignore[index]


def test_the_benchmarks_quiet_service_starts_and_answers() -> None:
    """`make bench` runs the service logging at WARNING, where it never says it listens: it is
    still found ready, and answers."""
    from benchmarks.engine_parts import service

    with service() as (base_url, _pid):
        assert web.get(base_url + "/healthz", timeout=10).status_code == 200


def test_the_simulation_sections_copies_are_each_a_patient_of_their_own(tmp_path: Path) -> None:
    """The simulation counts a patient in two files once; the section's copies of each record
    must each be a patient, or it would time 8 files and count 1."""
    import shutil

    from benchmarks.simulation import AS_OF, COPIES, bundle_folder
    from iris_prompt.simulate.cli import simulate

    source = tmp_path / "source"
    source.mkdir()
    fixture = Path(__file__).resolve().parent / "fixtures" / "population" / "bundles"
    for name in ("pop-01.json", "pop-02.json"):
        shutil.copy(fixture / name, source / name)
    report = simulate(bundle_folder(source, tmp_path / "bundles"), as_of=AS_OF, workers=1)
    assert report.skipped == [] and report.new.records == 2 * COPIES
