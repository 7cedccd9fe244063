"""Reading a FHIR Bulk Data export (NDJSON: one resource per line, any number of files; the
type is each line's `resourceType`, so `Observation.ndjson` and `Observation-2.ndjson` both
work) one patient at a time. `population.open_population` calls this for a folder of
`.ndjson` files.

Pass one reads every line once: the lines of the types the service reads (Patient, Condition,
Observation, Encounter, Procedure) are parsed to find their patient (`subject`, else `patient`)
and indexed by byte offset, 8 bytes a line; Groups, RelatedPersons and Flags are kept as shared
facts; any other type is recognised from its first key and not parsed at all. Pass two
(`NdjsonReader`) seeks to one patient's lines and parses only those.
"""

import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from iris_prompt.simulate.population import (
    READ_TYPES,
    SHARED_TYPES,
    PatientResources,
    Population,
    PopulationError,
    Shared,
    Skipped,
    reference_id,
)

__all__ = ["NdjsonReader", "open_ndjson"]

# A line whose first key is resourceType tells its type without being parsed.
_LEADING_TYPE = re.compile(rb'\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')
# Offsets in the index pack the file number above the byte offset (files up to 1 TiB).
_OFFSET_BITS = 40


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
        """Index every file; raises PopulationError for a file that cannot be read at all
        (the figures would silently miss everything in it), where a bad line is skipped."""
        for number, file in enumerate(self.files):
            lines = resources = 0
            try:
                with file.open("rb") as stream:
                    offset = 0
                    for line_number, line in enumerate(stream, start=1):
                        if line.strip():
                            where = f"{file.name} line {line_number}"
                            lines += 1
                            resources += self._line(line, _pack(number, offset), where)
                        offset += len(line)
            except OSError as error:
                raise PopulationError(
                    f"{file} cannot be read ({error.strerror}): the figures would miss "
                    "every resource in it"
                ) from None
            if lines and not resources:
                raise PopulationError(
                    f"{file}: none of its {lines} lines is a FHIR resource (not NDJSON, "
                    "or compressed?): the figures would miss every resource in it"
                )

    def _line(self, line: bytes, location: int, where: str) -> bool:
        """Index one line; whether it is a FHIR resource (even one skipped for what it lacks)."""
        leading = _LEADING_TYPE.match(line)
        if leading is not None:
            kind = leading.group(1).decode()
            if kind not in READ_TYPES and kind not in SHARED_TYPES:
                return True  # a type the service never reads is not even parsed
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.skipped.append(Skipped(where, "not valid JSON"))
            return False
        if not isinstance(resource, dict):
            self.skipped.append(Skipped(where, "not a FHIR resource (not a JSON object)"))
            return False
        self._resource(resource, location, where)
        return True

    def _resource(self, resource: dict[str, Any], location: int, where: str) -> None:
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


def open_ndjson(path: Path, files: list[Path]) -> Population:
    """Pass one over an export's files (see the module docstring)."""
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
