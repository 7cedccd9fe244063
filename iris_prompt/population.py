"""Populations of patient records for the alert-burden simulation, read one patient at a time.

Two layouts are read:

- a folder of FHIR R4 Bundles, one file per patient (`*.json`, as Synthea writes them);
- a FHIR Bulk Data export: `*.ndjson` files, one resource per line (any file name; the type is
  taken from each line's `resourceType`, so `Observation.ndjson` and `Observation-2.ndjson`
  both work).

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

Nothing holds more than one patient's record at a time. A file or line that cannot be used is
skipped and listed (`Skipped`: where, and why); it never stops the run. Reasons name the file
and line, never what the record holds.
"""

import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

__all__ = [
    "READ_TYPES",
    "BundleReader",
    "Mapper",
    "NdjsonReader",
    "PatientReader",
    "PatientResources",
    "Population",
    "PopulationError",
    "Shared",
    "Skipped",
    "member_patients_in",
    "nhs_numbers",
    "open_population",
    "reference_id",
    "scan_bundle",
]

# The resource types the prompt service reads for one patient (its prefetch: Patient, Condition,
# Observation, Encounter). The simulation gives the rules exactly these, so that a code on, say, a
# Procedure, which the service never sees, does not count here either.
READ_TYPES = frozenset({"Patient", "Condition", "Observation", "Encounter"})
# Cross-patient resources: households and the risk flags on their members.
SHARED_TYPES = frozenset({"Group", "RelatedPerson", "Flag"})
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"

# Pass one looks for these without parsing the whole file (parsing is most of the cost).
_SHARED_IN_FILE = re.compile(rb'"resourceType"\s*:\s*"(?:Group|RelatedPerson|Flag)"')
# An NDJSON line whose first key is resourceType tells its type without being parsed.
_LEADING_TYPE = re.compile(rb'\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')
# `map`, or a process pool's imap: applies a function to every item, in any order.
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]
# Offsets in the NDJSON index pack the file number above the byte offset (files up to 1 TiB).
_OFFSET_BITS = 40


class PopulationError(Exception):
    """The population as a whole cannot be read (no such folder, nothing in it)."""


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
            for member in _group_members(group)
            if member not in self.patients
        }
        known_numbers = {n for p in self.patients.values() for n in nhs_numbers(p)}
        numbers = {
            number
            for person in self.related_persons
            for number in nhs_numbers(person)
            if number not in known_numbers
        }
        return ids, numbers

    def keep_if_wanted(self, patient: dict[str, Any], ids: set[str], numbers: set[str]) -> None:
        patient_id = patient.get("id")
        if isinstance(patient_id, str) and (
            patient_id in ids or any(n in numbers for n in nhs_numbers(patient))
        ):
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
    ndjson = sorted(p for p in path.iterdir() if p.suffix == ".ndjson" and p.is_file())
    bundles = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    if ndjson:
        return _open_ndjson(path, ndjson)
    if bundles:
        return _open_bundles(path, bundles, mapper)
    raise PopulationError(f"{path}: holds no .json Bundles and no .ndjson files")


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


def nhs_numbers(resource: dict[str, Any]) -> list[str]:
    """The NHS numbers in a Patient's or RelatedPerson's identifiers."""
    found = []
    for identifier in resource.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER:
            value = identifier.get("value")
            if isinstance(value, str):
                found.append(value.replace(" ", ""))
    return found


def _group_members(group: dict[str, Any]) -> Iterator[str]:
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


# --- a Bulk Data NDJSON export ------------------------------------------------------------------
def _patient_of(resource: dict[str, Any]) -> str | None:
    """The patient a resource belongs to (its `subject`, else its `patient`)."""
    for key in ("subject", "patient"):
        value = resource.get(key)
        if isinstance(value, dict):
            patient_id = reference_id(value.get("reference"))
            if patient_id is not None:
                return patient_id
    return None


def _pack(file_number: int, offset: int) -> int:
    return file_number << _OFFSET_BITS | offset


def _unpack(location: int) -> tuple[int, int]:
    return location >> _OFFSET_BITS, location & ((1 << _OFFSET_BITS) - 1)


@dataclass
class _NdjsonIndex:
    """Pass one over an export: where each patient's lines are, and the shared facts."""

    files: list[Path]
    shared: Shared = field(default_factory=Shared)
    skipped: list[Skipped] = field(default_factory=list)
    lines: dict[str, "array[int]"] = field(default_factory=dict)  # patient id -> locations
    patients: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (location, where)

    def scan(self) -> None:
        for number, file in enumerate(self.files):
            try:
                with file.open("rb") as stream:
                    offset = 0
                    for line_number, line in enumerate(stream, start=1):
                        if line.strip():
                            where = f"{file.name} line {line_number}"
                            self._line(line, _pack(number, offset), where)
                        offset += len(line)
            except OSError as error:
                self.skipped.append(Skipped(file.name, f"cannot be read ({error.strerror})"))

    def _line(self, line: bytes, location: int, where: str) -> None:
        leading = _LEADING_TYPE.match(line)
        if leading is not None:
            kind = leading.group(1).decode()
            if kind not in READ_TYPES and kind not in SHARED_TYPES:
                return  # a type the service never reads is not even parsed
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.skipped.append(Skipped(where, "not valid JSON"))
            return
        if not isinstance(resource, dict):
            self.skipped.append(Skipped(where, "not a FHIR resource (not a JSON object)"))
            return
        kind = resource.get("resourceType")
        self.shared.add(resource)
        if kind not in READ_TYPES:
            return
        if kind == "Patient":
            patient_id = resource.get("id")
            if not isinstance(patient_id, str) or not patient_id:
                self.skipped.append(Skipped(where, "a Patient with no id"))
                return
            if patient_id in self.patients:
                self.skipped.append(Skipped(where, "a second Patient with the same id"))
                return
            self.patients[patient_id] = (location, where)
        else:
            patient_id = _patient_of(resource)
            if patient_id is None:
                self.skipped.append(
                    Skipped(where, f"{kind} with no patient reference (subject or patient)")
                )
                return
        self.lines.setdefault(patient_id, array("Q")).append(location)

    def orphans(self) -> None:
        """Lines of patients the export has no Patient for: counted per file."""
        per_file: dict[int, int] = {}
        for patient_id, locations in self.lines.items():
            if patient_id not in self.patients:
                for location in locations:
                    number = _unpack(location)[0]
                    per_file[number] = per_file.get(number, 0) + 1
        for number, count in sorted(per_file.items()):
            reason = f"{count} line(s) refer to a patient who is not in the export"
            self.skipped.append(Skipped(self.files[number].name, reason))

    def member_patients(self, reader: "NdjsonReader") -> None:
        ids, numbers = self.shared.wanted_patients()
        for patient_id in ids & self.patients.keys():
            self.shared.keep_if_wanted(reader.resource(self.patients[patient_id][0]), ids, set())
        if numbers:
            pattern = re.compile(b"|".join(re.escape(f'"{n}"'.encode()) for n in sorted(numbers)))
            for location, _where in self.patients.values():
                if pattern.search(reader.line(location)):
                    self.shared.keep_if_wanted(reader.resource(location), set(), numbers)


def _open_ndjson(path: Path, files: list[Path]) -> Population:
    index = _NdjsonIndex(files)
    index.scan()
    index.orphans()
    reader = NdjsonReader(files)
    index.member_patients(reader)
    reader.close()
    units = [(pid, where, index.lines[pid]) for pid, (_, where) in index.patients.items()]
    return Population(path, "FHIR Bulk Data NDJSON", index.shared, units, reader, index.skipped)


class NdjsonReader:
    """Reads one patient's lines from the export. A unit is (patient id, where the Patient
    line is, packed locations of all the patient's lines)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = [str(f) for f in files]
        self._open: dict[int, BinaryIO] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "_open": {}}  # open files stay in their own process

    def line(self, location: int) -> bytes:
        number, offset = _unpack(location)
        stream = self._open.get(number)
        if stream is None:
            stream = self._open[number] = open(self.files[number], "rb")
        stream.seek(offset)
        return stream.readline()

    def resource(self, location: int) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.line(location))
        return value

    def close(self) -> None:
        for stream in self._open.values():
            stream.close()
        self._open.clear()

    def read(self, unit: tuple[str, str, "array[int]"]) -> PatientResources | Skipped | None:
        patient_id, where, locations = unit
        try:
            resources = [self.resource(location) for location in locations]
        except OSError as error:
            return Skipped(where, f"cannot be read ({error.strerror})")
        return PatientResources(patient_id, where, resources)
