"""The simulation runs the service's rules over the hand-made population and counts exactly.

The expected answers are in tests/fixtures/population/README.md, written from the rules.
"""

import datetime
from pathlib import Path
from typing import Any

import pytest

from iris_prompt.codesets.files import default_codesets_dir
from iris_prompt.engine.rules import RuleSettings
from iris_prompt.engine.service import PRACTICE_TIME_ZONE
from iris_prompt.simulate.cli import simulate
from iris_prompt.simulate.population import open_population
from iris_prompt.simulate.report import report_json
from iris_prompt.simulate.run import PatientResult, RunSettings, run_population
from iris_prompt.simulate.tally import Hit
from tests.unit.simulate.conftest import AS_OF, BUNDLES, MOVED_CODE

READ_V2 = "http://read.info/readv2"
E2002 = Hit(READ_V2, "E2002", "Generalised anxiety disorder", "anxiety")


def enquiry(*categories: str, mappa: bool = False) -> dict[str, Any]:
    return {"enquiry": set(categories), "mappa": mappa}


NOTHING: dict[str, Any] = {}
# Per patient: what a clinician opening the record on AS_OF would see (README table).
EXPECTED: dict[str, dict[str, Any]] = {
    "pop-01": enquiry("depression"),
    "pop-02": enquiry("anxiety"),
    "pop-03": NOTHING,
    "pop-04": {"suppressed": True},
    "pop-05": enquiry("anxiety"),
    "pop-06": enquiry("depression"),
    "pop-07": {"known": {"victim"}},
    "pop-08": {"known": {"history"}},
    "pop-09": {"reason": "under 16"},
    "pop-10": enquiry("self-harm"),
    "pop-11": enquiry("anxiety", "depression", mappa=True),
    "pop-12": NOTHING,
    # Not considered for an enquiry, but a clinician opening the child's record sees the
    # household member's MAPPA flag (Child T was 8).
    "pop-13": {"reason": "under 16", "mappa": True},
    "pop-14": NOTHING,
    "pop-15": NOTHING,
    "pop-16": NOTHING,
    "pop-17": NOTHING,
    "pop-18": enquiry("ptsd"),
    "pop-19": NOTHING,
    "pop-20": enquiry("assault"),
    "pop-21": enquiry("anxiety", "depression"),
    "pop-22": {"mappa": True},
    "pop-23": NOTHING,
    "pop-24": {"reason": "deceased"},
    # The physical indicators and acute stress of trigger 2.0.0, each with a 1-year window.
    "pop-25": enquiry("pregnancy-loss"),  # a termination recorded as a Procedure
    "pop-26": NOTHING,  # a miscarriage in March 2025
    "pop-27": enquiry("uti"),  # three UTIs in the year
    "pop-28": NOTHING,  # two UTIs in the year, a third in May 2025
    "pop-29": enquiry("recurrent-uti"),
    "pop-30": enquiry("sti"),
    "pop-31": enquiry("pelvic-pain"),
    "pop-32": enquiry("chronic-pain"),  # the 2024 fibromyalgia alone would not count
    "pop-33": enquiry("gi"),
    "pop-34": enquiry("headache"),
    "pop-35": NOTHING,  # an acute stress reaction in August 2024
    "pop-36": enquiry("acute-stress"),
}


def seen(result: PatientResult) -> dict[str, Any]:
    """A patient's outcome in the shape of EXPECTED (only what is not 'nothing')."""
    o = result.new
    found: dict[str, Any] = {}
    if o.reason is not None:
        found["reason"] = o.reason
    if o.enquiry:
        found["enquiry"] = {h.category for h in o.triggers}
    if o.known_abuse:
        found["known"] = {h.category for h in o.known}
    if o.mappa:
        found["mappa"] = True
    if o.suppressed:
        found["suppressed"] = True
    return found


def expected_shape(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in expected.items() if v not in (False, None)}


@pytest.fixture(params=["bundles", "ndjson"])
def population(request: pytest.FixtureRequest, ndjson_population: Path) -> Path:
    return BUNDLES if request.param == "bundles" else ndjson_population


def test_each_patient_gets_what_the_rules_say(population: Path) -> None:
    opened = open_population(population)
    now = datetime.datetime.combine(AS_OF, datetime.time(12), tzinfo=PRACTICE_TIME_ZONE)
    settings = RunSettings(default_codesets_dir(), None, now, RuleSettings())
    results = list(run_population(opened, settings, workers=1))
    assert opened.skipped == []
    assert all(isinstance(r, PatientResult) for r in results)
    found = {r.patient_id: seen(r) for r in results if isinstance(r, PatientResult)}
    assert found == {pid: expected_shape(e) for pid, e in EXPECTED.items()}


def test_counts_are_exact(population: Path) -> None:
    report = report_json(simulate(population, as_of=AS_OF))
    assert report["population"]["records"] == 36
    assert report["population"]["skipped"] == 0
    assert report["summary"] == {
        "adults_considered": {"count": 33, "percent": 100.0},
        "enquiry_prompt": {"count": 18, "percent": 54.5},
        "known_abuse_card": {"count": 2, "percent": 6.1},
        "mappa_household_card": {"count": 2, "percent": 6.1},
        "suppressed_by_recent_enquiry": {"count": 1, "percent": 3.0},
    }
    assert report["not_considered"] == {"under 16": 2, "deceased": 1}
    assert report["mappa_household_card_not_considered"] == 1  # pop-13, aged 8
    by_category = {row["category"]: row["count"] for row in report["enquiry_by_category"]}
    one_each = ["pregnancy-loss", "uti", "recurrent-uti", "sti", "pelvic-pain", "chronic-pain"]
    one_each += ["gi", "headache", "acute-stress", "self-harm", "ptsd", "assault"]
    assert by_category == {"depression": 4, "anxiety": 4} | dict.fromkeys(one_each, 1)
    by_code = {(row["system_name"], row["code"]): row["count"] for row in report["enquiry_by_code"]}
    assert by_code == {
        ("Read v2", "E2002"): 3,
        ("SNOMED CT", "35489007"): 2,
        ("SNOMED CT", "197480006"): 2,
        ("Read v2", "E2B.."): 2,
        ("SNOMED CT", "248062006"): 1,
        ("SNOMED CT", "47505003"): 1,
        ("SNOMED CT", "52684005"): 1,
        ("SNOMED CT", "386639001"): 1,  # pop-25, termination of pregnancy
        ("SNOMED CT", "1090711000000102"): 1,  # pop-27's three UTIs: both codes count
        ("SNOMED CT", "236620008"): 1,
        ("SNOMED CT", "197927001"): 1,
        ("SNOMED CT", "105629000"): 1,
        ("SNOMED CT", "162147009"): 1,
        ("SNOMED CT", "82423001"): 1,  # pop-32's chronic pain, not her 2024 fibromyalgia
        ("SNOMED CT", "10743008"): 1,
        ("SNOMED CT", "230471006"): 1,
        ("SNOMED CT", "67195008"): 1,
    }
    assert report["enquiry_by_code"][0]["code"] == "E2002"  # the top code comes first
    known = {row["category"]: row["count"] for row in report["known_abuse_by_category"]}
    assert known == {"victim": 1, "history": 1}
    assert [row["category"] for row in report["suppressed_by_category"]] == ["alcohol"]


def test_comparison_reports_exactly_the_patients_one_code_moves(old_codesets: Path) -> None:
    report = simulate(BUNDLES, compare_dir=old_codesets, as_of=AS_OF)
    assert report.comparison is not None and report.old is not None
    enquiry_change = report.comparison.enquiry
    assert enquiry_change.newly == {"pop-02", "pop-21"}
    assert enquiry_change.no_longer == set()
    assert dict(enquiry_change.newly_by_code) == {E2002: 2}
    assert dict(enquiry_change.newly_by_category) == {"anxiety": 2}
    assert report.comparison.known_abuse.newly == report.comparison.known_abuse.no_longer == set()
    assert (report.old.enquiry, report.new.enquiry) == (16, 18)
    assert (report.old.suppressed, report.new.suppressed) == (2, 1)
    assert report.old_codesets == report.codesets  # same versions: the lead forgot to bump


def test_comparison_the_other_way_round(old_codesets: Path) -> None:
    report = simulate(BUNDLES, old_codesets, compare_dir=default_codesets_dir(), as_of=AS_OF)
    assert report.comparison is not None
    assert report.comparison.enquiry.newly == set()
    assert report.comparison.enquiry.no_longer == {"pop-02", "pop-21"}
    assert dict(report.comparison.enquiry.no_longer_by_code) == {E2002: 2}
    assert report.new.enquiry_by_code[E2002] == 0
    assert MOVED_CODE == (E2002.system, E2002.code)


def counts(report: dict[str, Any]) -> dict[str, Any]:
    """A JSON report without what differs between runs of the same population."""
    del report["population"]["path"], report["population"]["kind"], report["seconds"]
    return report


def test_ndjson_and_bundles_give_the_same_report(ndjson_population: Path) -> None:
    from_bundles = counts(report_json(simulate(BUNDLES, as_of=AS_OF)))
    assert counts(report_json(simulate(ndjson_population, as_of=AS_OF))) == from_bundles


def test_two_processes_count_the_same(ndjson_population: Path, old_codesets: Path) -> None:
    one = counts(report_json(simulate(BUNDLES, compare_dir=old_codesets, as_of=AS_OF, workers=1)))
    for population in (BUNDLES, ndjson_population):
        two = report_json(simulate(population, compare_dir=old_codesets, as_of=AS_OF, workers=2))
        assert counts(two) == one


def test_the_as_of_date_is_the_day_of_the_call() -> None:
    # The day before, pop-10 is 15 and not considered; pop-20's assault (2026-09-20) and the
    # rest are unchanged.
    report = simulate(BUNDLES, as_of=AS_OF - datetime.timedelta(days=1))
    assert report.new.not_considered["under 16"] == 3
    assert report.new.enquiry == 17
    # A year later the 2026 entries in 1-year categories (assault) have left their window, and
    # only one of pop-27's three UTIs (2026-10-20) is left in hers: fewer than three.
    later = simulate(BUNDLES, as_of=datetime.date(2027, 10, 1))
    assert later.new.enquiry_by_category["assault"] == 0
    assert later.new.enquiry_by_category["uti"] == 0


def test_the_synthea_records_are_all_read(reference_dir: Path) -> None:
    report = simulate(reference_dir / "synthea" / "patients", as_of=AS_OF)
    assert report.skipped == []
    assert report.new.records == 39
    assert report.new.considered + sum(report.new.not_considered.values()) == 39
