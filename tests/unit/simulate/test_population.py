"""Reading populations: Bundle folders and Bulk Data NDJSON, one patient at a time; bad input
skipped, counted and listed with where and why."""

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from iris_prompt.cli import main
from iris_prompt.simulate import run as simulate_run
from iris_prompt.simulate.cli import simulate
from iris_prompt.simulate.population import (
    READ_TYPES,
    PatientResources,
    PopulationError,
    Skipped,
    open_population,
    reference_id,
)
from tests.unit.simulate.conftest import AS_OF, BUNDLES, bundle_resources, write_ndjson


def read_all(path: Path) -> dict[str, list[dict[str, Any]]]:
    population = open_population(path)
    found: dict[str, list[dict[str, Any]]] = {}
    for unit in population.units:
        result = population.reader.read(unit)
        assert isinstance(result, PatientResources), result
        found[result.patient_id] = result.resources
    population.reader.close()
    return found


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{r['resourceType']}/{r['id']}" for r in resources)


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def patient(pid: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1990-01-01"} | fields


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/p1", "p1"),
        ("https://fhir.example.org/Patient/p1", "p1"),
        ("https://fhir.example.org/Patient/p1/_history/3", "p1"),
        ("urn:uuid:2f1c9a4e", "2f1c9a4e"),  # Synthea's Bundle-local references
        ("Group/g1", None),  # not a patient
        ("#contained", None),
        ("Patient/", None),
        (None, None),
        (42, None),
    ],
)
def test_reference_id(reference: object, expected: str | None) -> None:
    assert reference_id(reference) == expected


def test_each_patient_has_only_the_resources_the_service_reads() -> None:
    population = read_all(BUNDLES)
    assert len(population) == 36
    assert ids(population["pop-11"]) == [
        "Condition/pop-11-c1",
        "Observation/pop-11-o1",
        "Observation/pop-11-o2",
        "Patient/pop-11",
    ]  # the Group is a household fact, not part of her record
    assert all(r["resourceType"] in READ_TYPES for rs in population.values() for r in rs)


def test_ndjson_gives_each_patient_the_same_resources(ndjson_population: Path) -> None:
    from_bundles, from_ndjson = read_all(BUNDLES), read_all(ndjson_population)
    assert {p: ids(rs) for p, rs in from_ndjson.items()} == {
        p: ids(rs) for p, rs in from_bundles.items()
    }
    assert from_ndjson["pop-21"] == sorted(
        from_bundles["pop-21"], key=lambda r: (r["resourceType"], r["id"])
    )


def test_pass_one_collects_households_flags_and_members(ndjson_population: Path) -> None:
    for path in (BUNDLES, ndjson_population):
        shared = open_population(path).shared
        assert sorted(g["id"] for g in shared.groups) == ["household-a", "household-b"]
        assert sorted(f["id"] for f in shared.flags) == ["pop-12-f1", "pop-15-f1", "pop-23-f1"]
        assert [r["id"] for r in shared.related_persons] == ["pop-22-rp1"]
        # Group members by id, and pop-23 by the NHS number on pop-22's RelatedPerson; no one
        # else's Patient is held.
        assert sorted(shared.patients) == [
            "pop-11",
            "pop-12",
            "pop-13",
            "pop-14",
            "pop-15",
            "pop-23",
        ]


def test_a_file_of_households_alone_is_shared_data(tmp_path: Path) -> None:
    shutil.copytree(BUNDLES, tmp_path / "p")
    group = {
        "resourceType": "Group",
        "id": "g9",
        "type": "person",
        "member": [
            {"entity": {"reference": "Patient/pop-01"}},
            {"entity": {"reference": "Patient/pop-03"}},
        ],
    }
    (tmp_path / "p" / "households.json").write_text(json.dumps(bundle(group)))
    population = open_population(tmp_path / "p")
    assert len(population.units) == 36 and population.skipped == []
    assert "g9" in [g["id"] for g in population.shared.groups]
    assert {"pop-01", "pop-03"} <= population.shared.patients.keys()


def write(folder: Path, name: str, value: object) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    (folder / name).write_text(text, encoding="utf-8")


def test_bad_bundle_files_are_skipped_counted_and_listed(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    shutil.copytree(BUNDLES, folder)
    write(folder, "broken.json", '{"resourceType": "Bundle", "entry": [')
    write(folder, "not-a-bundle.json", patient("x1"))
    write(folder, "no-patient.json", bundle({"resourceType": "Condition", "id": "c"}))
    write(folder, "two-patients.json", bundle(patient("x2"), patient("x3")))
    write(folder, "no-id.json", bundle({"resourceType": "Patient", "birthDate": "1990-01-01"}))
    (folder / "pop-03.json").unlink()
    report = simulate(folder, as_of=AS_OF, workers=1)
    assert [(s.where, s.reason) for s in report.skipped] == [
        ("broken.json", "not valid JSON"),
        ("no-id.json", "its Patient has no id"),
        (
            "no-patient.json",
            "holds 0 Patient resources; a population Bundle holds one patient's record",
        ),
        ("not-a-bundle.json", "not a FHIR Bundle (resourceType is not 'Bundle')"),
        (
            "two-patients.json",
            "holds 2 Patient resources; a population Bundle holds one patient's record",
        ),
    ]
    assert report.new.records == 35  # the good records are all counted
    assert report.new.enquiry == 18  # pop-03 had none


@pytest.mark.parametrize("workers", [1, 2])
def test_a_patient_in_two_bundle_files_is_counted_once(tmp_path: Path, workers: int) -> None:
    """A second file for one patient (a copy, a re-export) would count them twice, while the
    comparison, which goes by patient, counted them once: the figures would not add up."""
    folder = tmp_path / "p"
    shutil.copytree(BUNDLES, folder)
    shutil.copy(folder / "pop-01.json", folder / "pop-01b.json")
    shutil.copy(folder / "pop-11.json", folder / "again-pop-11.json")
    report = simulate(folder, as_of=AS_OF, workers=workers)
    assert report.new.records == 36 and report.new.enquiry == 18 and report.new.mappa == 2
    assert [(s.where, s.reason) for s in report.skipped] == [
        ("pop-01b.json", "the same patient as pop-01.json (its Patient id): counted once"),
        ("pop-11.json", "the same patient as again-pop-11.json (its Patient id): counted once"),
    ]


def test_a_file_gone_before_it_is_read_is_listed(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    shutil.copytree(BUNDLES, folder)
    population = open_population(folder)
    (folder / "pop-05.json").unlink()
    result = population.reader.read(str(folder / "pop-05.json"))
    assert result == Skipped("pop-05.json", "cannot be read (No such file or directory)")


def test_a_record_the_rules_cannot_read_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Test double: no well-formed record is known to make the rules raise, so read_record is
    # replaced by one that raises for one patient, as a malformed record would.
    real = simulate_run.read_record

    def fragile(resources: list[dict[str, Any]], codesets: Any) -> Any:
        if any(r.get("id") == "pop-07" for r in resources):
            raise TypeError("unhashable type: 'list' (quoting the record: 'Ms Example')")
        return real(resources, codesets)

    monkeypatch.setattr(simulate_run, "read_record", fragile)
    report = simulate(BUNDLES, as_of=AS_OF, workers=1)
    assert report.skipped == [Skipped("pop-07.json", "the rules could not read it (TypeError)")]
    assert report.new.records == 35 and report.new.known_abuse == 1


def test_bad_ndjson_lines_are_skipped_counted_and_listed(tmp_path: Path) -> None:
    by_type = bundle_resources(BUNDLES)
    folder = write_ndjson(tmp_path / "export", by_type)
    with (folder / "Observation.ndjson").open("a", encoding="utf-8") as out:
        out.write("\n")  # a blank line is not a record
        out.write("{not json\n")
        out.write("[1, 2]\n")
        out.write(json.dumps({"resourceType": "Observation", "id": "o1", "status": "final"}) + "\n")
        for n in range(2):
            ghost = {
                "resourceType": "Observation",
                "id": f"g{n}",
                "subject": {"reference": "Patient/ghost"},
            }
            out.write(json.dumps(ghost) + "\n")
    lines = (folder / "Observation.ndjson").read_text().count("\n")
    with (folder / "Patient.ndjson").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"resourceType": "Patient", "birthDate": "1990-01-01"}) + "\n")
        out.write(json.dumps(patient("pop-01")) + "\n")
    patients = (folder / "Patient.ndjson").read_text().count("\n")
    report = simulate(folder, as_of=AS_OF, workers=1)
    assert [(s.where, s.reason) for s in report.skipped] == [
        ("Observation.ndjson", "2 line(s) refer to a patient who is not in the export"),
        (f"Observation.ndjson line {lines - 4}", "not valid JSON"),
        (f"Observation.ndjson line {lines - 3}", "not a FHIR resource (not a JSON object)"),
        (
            f"Observation.ndjson line {lines - 2}",
            "Observation with no patient reference (subject or patient)",
        ),
        (f"Patient.ndjson line {patients - 1}", "a Patient with no id"),
        (f"Patient.ndjson line {patients}", "a second Patient with the same id"),
    ]
    assert report.new.records == 36 and report.new.enquiry == 18


def test_types_the_service_never_reads_are_not_parsed(tmp_path: Path) -> None:
    folder = write_ndjson(tmp_path / "export", bundle_resources(BUNDLES))
    # Unparseable, but announced as a Claim by its first key: never parsed, so never listed.
    (folder / "Claim.ndjson").write_text('{"resourceType":"Claim","id":"x", oops\n')
    assert open_population(folder).skipped == []


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_a_population_that_is_not_there_is_an_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "population"
    if make == "file":
        path.write_text("{}")
    elif make == "empty":
        path.mkdir()
    with pytest.raises(PopulationError, match="population"):
        open_population(path)


def refused(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What `simulate` says when it refuses a population: exit 1, no report of any kind."""
    page = tmp_path / "report.html"
    argv = [str(folder), "--as-of", AS_OF.isoformat(), "--workers", "1", "--html", str(page)]
    assert main(["simulate", *argv]) == 1
    out, err = capsys.readouterr()
    assert out == "" and not page.exists() and "records in" not in err
    assert err.startswith("iris-prompt simulate: ")
    return err


def test_an_export_with_no_patients_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_type = bundle_resources(BUNDLES)
    del by_type["Patient"]
    err = refused(write_ndjson(tmp_path / "export", by_type), tmp_path, capsys)
    assert "no Patient resource could be read" in err and "Patient.ndjson" in err


def test_a_folder_whose_every_bundle_is_skipped_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    write(folder, "broken.json", '{"resourceType": "Bundle", "entry": [')
    write(folder, "no-patient.json", bundle({"resourceType": "Condition", "id": "c"}))
    err = refused(folder, tmp_path, capsys)
    assert (
        "no patient's record could be read; 2 skipped, such as broken.json: not valid JSON" in err
    )


@pytest.mark.parametrize("make", ["folder", "compressed"])
def test_a_resource_file_that_cannot_be_read_at_all_is_refused(
    tmp_path: Path, make: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a line or two skipped: every Condition would be missing from the figures."""
    folder = write_ndjson(tmp_path / "export", bundle_resources(BUNDLES))
    conditions = folder / "Condition.ndjson"
    if make == "folder":
        conditions.unlink()
        conditions.mkdir()
    else:
        conditions.write_bytes(gzip.compress(conditions.read_bytes()))
    err = refused(folder, tmp_path, capsys)
    assert "Condition.ndjson" in err
    with pytest.raises(PopulationError, match="Condition.ndjson"):
        simulate(folder, as_of=AS_OF, workers=1)
