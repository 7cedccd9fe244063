"""Populations of patient records for the alert-burden simulation, read one patient at a time.

Two layouts are read:

- a folder of FHIR R4 Bundles, one file per patient (`*.json`, as Synthea writes them);
- a FHIR Bulk Data export: `*.ndjson` files, one resource per line (`population_ndjson`).

    population = open_population(Path("export"))      # pass one
    for unit in population.units:                       # pass two, in any process
        resources = population.reader.read(unit)

Households cross patients: a Group lists several patients, a Flag sits on a household member, a
RelatedPerson points at another patient's NHS number. So reading has two passes:

1. `open_population` collects the small cross-patient facts (`Shared`: every Group,
   RelatedPerson and Flag, and the Patient resource of each household member) and, for NDJSON,
   an index of where each patient's lines are (byte offsets, 8 bytes a line). In a Bundle folder
   only files that hold a Group, Flag or RelatedPerson are parsed in this pass (a cheap byte scan
   finds them), plus any file holding a household member's Patient.
2. `PatientReader.read(unit)` reads one patient's resources, in whichever process runs it.

Nothing holds more than one patient's record at a time. A Bundle file or NDJSON line that
cannot be used is skipped and listed (`Skipped`: where, and why); it does not stop the run. An
NDJSON file that cannot be read at all, or a population of which no patient's record could be
read, does (`PopulationError`): the figures would silently describe the wrong population.
Reasons name the file and line, never what the record holds.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import orjson

from iris_prompt.engine.membership import nhs_number

__all__ = [
    "READ_TYPES",
    "SHARED_TYPES",
    "BundleReader",
    "Mapper",
    "PatientReader",
    "PatientResources",
    "Population",
    "PopulationError",
    "Shared",
    "Skipped",
    "group_members",
    "member_patients_in",
    "nobody_read",
    "open_population",
    "reference_id",
    "scan_bundle",
]

# The resource types the prompt service reads for one patient (its prefetch: Patient, Condition,
# Observation, Encounter, Procedure). The simulation gives the rules exactly these, so that a
# code on, say, a MedicationRequest, which the service never sees, does not count here either.
READ_TYPES = frozenset({"Patient", "Condition", "Observation", "Encounter", "Procedure"})
# Cross-patient resources: households and the risk flags on their members.
SHARED_TYPES = frozenset({"Group", "RelatedPerson", "Flag"})

# Pass one looks for these without parsing the whole file (parsing is most of the cost).
_SHARED_IN_FILE = re.compile(rb'"resourceType"\s*:\s*"(?:Group|RelatedPerson|Flag)"')
# `map`, or a process pool's imap: applies a function to every item, in any order.
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


class PopulationError(Exception):
    """The population as a whole cannot be read (no such folder, nothing in it, an NDJSON file
    unreadable, no patient's record read)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or line left out of the simulation: where it is and why (never its content)."""

    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class PatientResources:
    """One patient's resources of the types the service reads; `where` names the file."""

    patient_id: str
    where: str
    resources: list[dict[str, Any]]


@dataclass
class Shared:
    """The cross-patient facts: households, their members' Patients, and the members' Flags."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    related_persons: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, resource: dict[str, Any]) -> None:
        kind = resource.get("resourceType")
        if kind == "Group":
            self.groups.append(resource)
        elif kind == "RelatedPerson":
            self.related_persons.append(resource)
        elif kind == "Flag":
            self.flags.append(resource)

    def wanted_patients(self) -> tuple[set[str], set[str]]:
        """Household members whose Patient is still unknown: (ids, NHS numbers)."""
        ids = {
            member
            for group in self.groups
            for member in group_members(group)
            if member not in self.patients
        }
        known_numbers = {nhs_number(p) for p in self.patients.values()}
        numbers = {
            number
            for number in map(nhs_number, self.related_persons)
            if number is not None and number not in known_numbers
        }
        return ids, numbers

    def keep_if_wanted(self, patient: dict[str, Any], ids: set[str], numbers: set[str]) -> None:
        patient_id = patient.get("id")
        if isinstance(patient_id, str) and (patient_id in ids or nhs_number(patient) in numbers):
            self.patients[patient_id] = patient


class PatientReader(Protocol):
    """Reads one unit of work (a file, or an NDJSON patient) into that patient's resources."""

    def read(self, unit: Any) -> PatientResources | Skipped | None: ...

    def close(self) -> None: ...


@dataclass
class Population:
    """An opened population: what it is, the shared facts, the units to read, early skips."""

    path: Path
    kind: str
    shared: Shared
    units: list[Any]
    reader: PatientReader
    skipped: list[Skipped]


def open_population(path: Path, mapper: "Mapper" = map) -> Population:
    """Pass one over a Bundle folder or an NDJSON export; raises PopulationError if unusable.

    `mapper` is `map`, or a parallel one (a process pool's `imap`) to scan Bundle files on
    several cores; results may come in any order.
    """
    if not path.is_dir():
        raise PopulationError(f"{path}: not a folder of FHIR Bundles or NDJSON files")
    # Not only files: an export's Condition.ndjson that is not a file is refused, not ignored.
    ndjson = sorted(p for p in path.iterdir() if p.suffix == ".ndjson")
    bundles = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    if ndjson:
        # Imported here: the NDJSON reader builds on this module's types.
        from iris_prompt.simulate.ndjson import open_ndjson

        return open_ndjson(path, ndjson)
    if bundles:
        return _open_bundles(path, bundles, mapper)
    raise PopulationError(f"{path}: holds no .json Bundles and no .ndjson files")


def nobody_read(population: Population, skipped: list[Skipped]) -> PopulationError:
    """The error for a population of which no patient's record could be read (`skipped`: every
    file and line left out)."""
    said = f"{population.path}: no patient's record could be read"
    if not isinstance(population.reader, BundleReader) and not population.units:
        said = (
            f"{population.path}: no Patient resource could be read from the export (a Bulk Data "
            "export has them in Patient.ndjson)"
        )
    elif not skipped:
        said += " (its files hold household data only)"
    if skipped:
        first = min(skipped, key=lambda s: (s.where, s.reason))
        said += f"; {len(skipped)} skipped, such as {first.where}: {first.reason}"
    return PopulationError(said)


def reference_id(reference: object, resource_type: str = "Patient") -> str | None:
    """The id a reference points at: `Patient/1`, `https://x/fhir/Patient/1/_history/2`, or
    `urn:uuid:1` (Synthea's form, whose uuid is the resource id); None for anything else.

        >>> reference_id("Patient/p1"), reference_id("urn:uuid:9f1c"), reference_id("Group/g")
        ('p1', '9f1c', None)
    """
    if not isinstance(reference, str):
        return None
    if reference.startswith("urn:uuid:"):
        return reference[len("urn:uuid:") :] or None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def group_members(group: dict[str, Any]) -> Iterator[str]:
    """The patient ids a Group lists, current or not (`household` decides who is current)."""
    for member in group.get("member") or ():
        if isinstance(member, dict) and isinstance(member.get("entity"), dict):
            member_id = reference_id(member["entity"].get("reference"))
            if member_id is not None:
                yield member_id


def _flatten(value: object) -> list[dict[str, Any]]:
    """The resources in a Bundle (nested Bundles included), or the resource itself."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") != "Bundle":
        return [value]
    found: list[dict[str, Any]] = []
    for entry in value.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            if resource.get("resourceType") == "Bundle":
                found.extend(_flatten(resource))
            else:
                found.append(resource)
    return found


# --- a folder of Bundles ------------------------------------------------------------------------
def _load_bundle(path: Path) -> list[dict[str, Any]] | Skipped:
    try:
        value = orjson.loads(path.read_bytes())
    except OSError as error:
        return Skipped(path.name, f"cannot be read ({error.strerror})")
    except orjson.JSONDecodeError:
        return Skipped(path.name, "not valid JSON")
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        return Skipped(path.name, "not a FHIR Bundle (resourceType is not 'Bundle')")
    return _flatten(value)


def scan_bundle(file: str) -> tuple[str, bool, list[dict[str, Any]] | Skipped]:
    """Pass one for one file: (file, whether it is a patient's record, its shared resources).

    Only a file the byte scan shows to hold a Group, Flag or RelatedPerson is parsed; a file of
    those alone is shared data, not a patient's record.
    """
    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as error:
        return file, False, Skipped(path.name, f"cannot be read ({error.strerror})")
    if not _SHARED_IN_FILE.search(data):
        return file, True, []
    resources = _load_bundle(path)
    if isinstance(resources, Skipped):
        return file, False, resources
    found = [r for r in resources if r.get("resourceType") in SHARED_TYPES]
    return file, any(r.get("resourceType") == "Patient" for r in resources), found


def member_patients_in(wanted: bytes, file: str) -> list[dict[str, Any]]:
    """The Patient resources in a file that mentions a wanted id or NHS number (`wanted` is a
    regular expression of them): a byte search picks the few files worth parsing."""
    path = Path(file)
    try:
        if not re.search(wanted, path.read_bytes()):
            return []
    except OSError:
        return []  # reported when the file is read as a patient's record
    resources = _load_bundle(path)
    if isinstance(resources, Skipped):
        return []
    return [r for r in resources if r.get("resourceType") == "Patient"]


def _open_bundles(path: Path, files: list[Path], mapper: Mapper) -> Population:
    shared = Shared()
    skipped: list[Skipped] = []
    units: list[str] = []
    for file, is_record, found in mapper(scan_bundle, [str(f) for f in files]):
        if isinstance(found, Skipped):
            skipped.append(found)
            continue
        for resource in found:
            shared.add(resource)
        if is_record:
            units.append(file)
    units.sort()
    ids, numbers = shared.wanted_patients()
    if ids or numbers:
        wanted = b"|".join(re.escape(f'"{v}"'.encode()) for v in sorted(ids | numbers))
        for patients in mapper(partial(member_patients_in, wanted), units):
            for patient in patients:
                shared.keep_if_wanted(patient, ids, numbers)
    return Population(path, "FHIR Bundles", shared, units, BundleReader(), skipped)


class BundleReader:
    """Reads one Bundle file (a unit is its path) into the patient's resources."""

    def read(self, unit: str) -> PatientResources | Skipped | None:
        path = Path(unit)
        resources = _load_bundle(path)
        if isinstance(resources, Skipped):
            return resources
        patients = [r for r in resources if r.get("resourceType") == "Patient"]
        if len(patients) != 1:
            return Skipped(
                path.name,
                f"holds {len(patients)} Patient resources; a population Bundle holds one "
                "patient's record",
            )
        patient_id = patients[0].get("id")
        if not isinstance(patient_id, str) or not patient_id:
            return Skipped(path.name, "its Patient has no id")
        kept = [r for r in resources if r.get("resourceType") in READ_TYPES]
        return PatientResources(patient_id, path.name, kept)

    def close(self) -> None:
        """Nothing stays open between files."""
