"""Reading one patient's record fast: the coded entries that matter, out of raw FHIR JSON.

The record arrives as plain dicts (orjson output): the prefetch values of a CDS call (keys to
Bundles or single resources) or a whole-patient Bundle. Both go through the same two functions::

    resources = chain.from_iterable(resources_in(value) for value in prefetch.values())
    record = read_record(resources, codesets)

No fhir.resources validation happens here. Validating a whole record costs about 130 ms per MB
of Bundle, and records reach 4 MB, so `read_record` looks only at the few fields it needs and
matches each coding with one dict lookup keyed by (system, code) over the three code sets.

What is read, and the status rules (docs/rules.md, "Reading the record", says the same for
clinicians):

- `Condition.code`: skipped when `verificationStatus` is refuted or entered-in-error. Its date is
  the latest of its onset and abatement, so an episode that ended recently is recent; the
  recordedDate only when it has neither (notes summarised on registration, or migrated between
  systems, get a new recordedDate: a 2013 problem recorded again in 2025 is from 2013).
- `Observation.code`: skipped when `status` is entered-in-error or cancelled. Dated by
  `effective[x]` (the later end of a period), else `issued`.
- `Encounter.reasonCode`: skipped when `status` is entered-in-error or cancelled. Dated by
  `period` (its start; else its end).
- `Procedure.code` (a termination of pregnancy is often a procedure): skipped when `status` is
  entered-in-error or not-done. Dated by `performed[x]` (a dateTime, or the later end of a
  period); a procedure performed at an age, in a range or as free text is undated.

Entries about another person are ignored: a Condition, Observation, Encounter or Procedure
whose `subject` (or `patient`) refers to anyone but the patient (another Patient, a Group, an
NHS number that is not the patient's) is never the patient's, however it reached the record
(a GP system's prefetch, or a search the service made). `PatientRecord.others` counts them,
for a log line without identifiers. An entry with no subject is the patient's: it came from a
search for the patient.

Other resource types are not read: the service prefetches only these, and the alert-burden
simulation must see exactly what the service sees. Codes: SNOMED CT, Read v2 (with or without
the 2-character term code) and CTV3, by their exact system URIs. A partial date ("2019-03")
counts as its first day; a dateTime counts on its day in England (`fhir_values.fhir_date`:
"2026-06-01T23:30:00Z" is 2 June, in British Summer Time).

>>> from iris_prompt.codesets.files import default_codesets_dir, load_codesets
>>> sets = load_codesets(default_codesets_dir())
>>> condition = {"resourceType": "Condition", "recordedDate": "2025-06-01",
...     "code": {"coding": [{"system": "http://read.info/readv2", "code": "E2000"}]}}
>>> [(e.set, e.category, e.when) for e in read_record([condition], sets).entries]
[('trigger', 'anxiety', datetime.date(2025, 6, 1))]
"""

import datetime
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from iris_prompt.codesets.codes import READ_V2
from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.fhir_values import as_str, codes_of, fhir_date, last_day
from iris_prompt.engine.membership import NHS_NUMBER_SYSTEM, nhs_number

__all__ = [
    "CodedEntry",
    "PatientRecord",
    "build_index",
    "fhir_date",
    "index_for",
    "read_record",
    "resources_in",
]

SKIPPED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
SKIPPED_STATUS = frozenset({"entered-in-error", "cancelled"})
SKIPPED_PROCEDURE_STATUS = frozenset({"entered-in-error", "not-done"})


@dataclass(frozen=True, slots=True)
class CodedEntry:
    """One coded entry of the record that is in a code set.

    `term` is the code set's (sourced) term, never the record's free text. `set` is the code
    set's purpose: "trigger", "recording" or "known-abuse". `when` is None for an undated entry.
    `clinical_status` is a Condition's clinicalStatus code (None for other resources), shown
    beside the entry on a card; the rules deliberately do not use it, dates decide: an *active*
    status must not bring an old problem into a lookback window (GP problem lists keep problems
    active for years), and a *resolved* or *inactive* known-abuse entry still means abuse is
    known.
    """

    system: str
    code: str
    term: str
    set: str
    category: str
    when: datetime.date | None
    resource_type: str
    clinical_status: str | None = None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """The patient resource (raw JSON, or None when absent) and the matched coded entries, with
    what the rules need of the patient read here once: `born`, the last day the birth date
    allows (so nobody is taken to be 16 before they may be; None when absent or unreadable),
    and `deceased` (deceasedBoolean true, or any deceasedDateTime)."""

    patient: dict[str, Any] | None
    entries: tuple[CodedEntry, ...]
    # Coded entries ignored because they are about another person (counted, never kept).
    others: int = 0
    born: datetime.date | None = field(init=False)
    deceased: bool = field(init=False)

    def __post_init__(self) -> None:
        patient = self.patient or {}
        object.__setattr__(self, "born", last_day(patient.get("birthDate")))
        deceased = patient.get("deceasedBoolean") is True or "deceasedDateTime" in patient
        object.__setattr__(self, "deceased", deceased)


def resources_in(value: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    """Every resource in a prefetch value: a Bundle's entries (nested Bundles too), or the
    resource itself. None yields nothing; OperationOutcomes (failed searches) are skipped.

    >>> bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Flag"}},
    ...     {"resource": {"resourceType": "OperationOutcome"}}, {"fullUrl": "no resource"}]}
    >>> [r["resourceType"] for r in resources_in(bundle)]
    ['Flag']
    """
    # Plain dict checks, not Mapping: records come from orjson, and an abstract-class check
    # per entry cost more than the whole code scan.
    if not isinstance(value, dict):
        return
    kind = value.get("resourceType")
    if kind != "Bundle":
        if isinstance(kind, str) and kind != "OperationOutcome":
            yield value
        return
    entries = value.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        inner = resource.get("resourceType")
        if inner == "Bundle":
            yield from resources_in(resource)
        elif isinstance(inner, str) and inner != "OperationOutcome":
            yield resource


# (system, code) -> every (set purpose, category, term) that code has.
Index = dict[tuple[str, str], tuple[tuple[str, str, str], ...]]


def build_index(codesets: CodeSets) -> Index:
    """One lookup table over the three sets (about 400 codes: microseconds to build)."""
    index: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for codeset in codesets:
        for member in codeset:
            key = (member.system, member.code)
            index.setdefault(key, []).append((codeset.purpose, member.category, member.term))
    return {key: tuple(hits) for key, hits in index.items()}


_INDEXES: dict[int, tuple[CodeSets, Index]] = {}


def index_for(codesets: CodeSets) -> Index:
    """`build_index`, remembered per code-set snapshot (building costs about 0.1 ms a call).

    The snapshot is kept with its index, so its id cannot be reused while the entry lives; a
    reload makes a new snapshot and so a new index.
    """
    cached = _INDEXES.get(id(codesets))
    if cached is not None and cached[0] is codesets:
        return cached[1]
    index = build_index(codesets)
    if len(_INDEXES) >= 4:
        _INDEXES.clear()
    _INDEXES[id(codesets)] = (codesets, index)
    return index


def _latest(*values: object) -> datetime.date | None:
    dates = [d for d in map(fhir_date, values) if d is not None]
    return max(dates) if dates else None


def _period(value: object) -> tuple[object, object]:
    if isinstance(value, Mapping):
        return value.get("start"), value.get("end")
    return None, None


def _condition_date(resource: Mapping[str, Any]) -> datetime.date | None:
    onset_start, onset_end = _period(resource.get("onsetPeriod"))
    abate_start, abate_end = _period(resource.get("abatementPeriod"))
    clinical = _latest(
        resource.get("onsetDateTime"),
        onset_start,
        onset_end,
        resource.get("abatementDateTime"),
        abate_start,
        abate_end,
    )
    # The recorded date only when there is no clinical date: notes summarised on registration
    # or migrated between systems get a new recordedDate, and a 2013 problem must not fire again.
    return clinical or fhir_date(resource.get("recordedDate"))


def _observation_date(resource: Mapping[str, Any]) -> datetime.date | None:
    start, end = _period(resource.get("effectivePeriod"))
    effective = _latest(resource.get("effectiveDateTime"), resource.get("effectiveInstant"))
    return effective or _latest(start, end) or fhir_date(resource.get("issued"))


def _encounter_date(resource: Mapping[str, Any]) -> datetime.date | None:
    start, end = _period(resource.get("period"))
    return fhir_date(start) or fhir_date(end)


def _procedure_date(resource: Mapping[str, Any]) -> datetime.date | None:
    start, end = _period(resource.get("performedPeriod"))
    return _latest(resource.get("performedDateTime"), start, end)


Hit = tuple[str, str, tuple[tuple[str, str, str], ...]]


def _hits(index: Index, concept: object, out: list[Hit]) -> None:
    """Append (system, stored code, hits) for each coding of `concept` that a set holds.

    The hot loop of the service: one dict lookup per coding, a second only for a Read v2 code
    carrying its term code. Plain dict and str checks, since records come from orjson.
    """
    if not isinstance(concept, dict):
        return
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            continue
        hits = index.get((system, code))
        if hits is None:
            if system != READ_V2 or len(code) != 7:
                continue
            code = code[:5]  # the term code picks a wording, not a concept
            hits = index.get((system, code))
            if hits is None:
                continue
        out.append((system, code, hits))


def _entries(
    found: list[Hit],
    resource_type: str,
    when: datetime.date | None,
    clinical_status: str | None = None,
) -> Iterator[CodedEntry]:
    for system, code, hits in found:
        for purpose, category, term in hits:
            yield CodedEntry(
                system, code, term, purpose, category, when, resource_type, clinical_status
            )


# Who an entry is about: ("Patient", id), (another type, id), ("nhs-number", n), or None when
# it names no one readable.
Owner = tuple[str, str] | None


def _owner(resource: Mapping[str, Any]) -> Owner:
    subject = resource.get("subject")
    if subject is None:
        subject = resource.get("patient")
    if not isinstance(subject, dict):
        return None
    reference = subject.get("reference")
    if isinstance(reference, str) and reference:
        parts = reference.split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2 and parts[-2] and parts[-1]:
            return parts[-2], parts[-1]
        return None  # a contained ("#x") or unreadable reference names no one we can compare
    identifier = subject.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM:
        value = identifier.get("value")
        if isinstance(value, str) and value.strip():
            return "nhs-number", value.replace(" ", "")
    return None


def _is_about(owner: Owner, patient_id: str | None, nhs: str | None) -> bool:
    """Whether an entry whose subject is `owner` may be the patient's."""
    if owner is None:
        return True
    kind, value = owner
    if kind == "Patient":
        return patient_id is None or value == patient_id
    if kind == "nhs-number":
        return nhs is None or value == nhs
    return False  # a Group, a Device, a Location: never this patient's own entry


def read_record(
    resources: Iterable[Mapping[str, Any]], codesets: CodeSets, *, patient_id: str | None = None
) -> PatientRecord:
    """The patient and the coded entries in `resources` that any code set holds.

    `resources` are every resource of one patient (see the module docstring for what is read
    and which statuses are skipped). The patient is the Patient whose id is `patient_id`, or,
    without one, the first Patient. A resource's dates are parsed only when one of its codes is
    found, which most never are. Entries about another person are left out and counted
    (`PatientRecord.others`).
    """
    index = index_for(codesets)
    patient: dict[str, Any] | None = None
    found: list[CodedEntry] = []
    owners: list[Owner] = []  # who each found entry is about
    hits: list[Hit] = []
    # Codes first, statuses and dates only for the few resources a set holds a code of: most
    # resources of a record never match, and this loop is the service's hot path.
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Observation":
            _hits(index, resource.get("code"), hits)
            if not hits:
                continue
            # A status that is not a string is malformed: ignored, like every field read.
            if as_str(resource.get("status")) not in SKIPPED_STATUS:
                _add(found, owners, resource, _entries(hits, kind, _observation_date(resource)))
            hits.clear()
        elif kind == "Condition":
            _hits(index, resource.get("code"), hits)
            if not hits:
                continue
            verification = codes_of(resource.get("verificationStatus"))
            if not SKIPPED_VERIFICATION.intersection(verification):
                clinical = codes_of(resource.get("clinicalStatus"))
                status = clinical[0] if clinical else None
                entries = _entries(hits, kind, _condition_date(resource), status)
                _add(found, owners, resource, entries)
            hits.clear()
        elif kind == "Procedure":
            _hits(index, resource.get("code"), hits)
            if not hits:
                continue
            if as_str(resource.get("status")) not in SKIPPED_PROCEDURE_STATUS:
                _add(found, owners, resource, _entries(hits, kind, _procedure_date(resource)))
            hits.clear()
        elif kind == "Encounter":
            reasons = resource.get("reasonCode")
            if not isinstance(reasons, list):
                continue
            for reason in reasons:
                _hits(index, reason, hits)
            if not hits:
                continue
            if as_str(resource.get("status")) not in SKIPPED_STATUS:
                _add(found, owners, resource, _entries(hits, kind, _encounter_date(resource)))
            hits.clear()
        elif kind == "Patient" and patient is None:
            if patient_id is None or resource.get("id") == patient_id:
                patient = dict(resource)
    own_id = patient_id
    if own_id is None and patient is not None and isinstance(patient.get("id"), str):
        own_id = patient["id"]
    own_nhs = nhs_number(patient) if patient is not None else None
    kept = [e for e, o in zip(found, owners, strict=True) if _is_about(o, own_id, own_nhs)]
    return PatientRecord(patient, tuple(kept), others=len(found) - len(kept))


def _add(
    found: list[CodedEntry],
    owners: list[Owner],
    resource: Mapping[str, Any],
    entries: Iterable[CodedEntry],
) -> None:
    owner = _owner(resource)
    for entry in entries:
        found.append(entry)
        owners.append(owner)
