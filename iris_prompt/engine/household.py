"""The patient's household as plain data: who lives there (relationship, age) and MAPPA risk.

`household_plan(...)` is the lookup as a pure plan (sans I/O): given the household Group and the
patient's RelatedPersons, it asks for the members' Patients and Flags and makes the `Household`
of the answers. The service answers it from the client's FHIR server (`engine.lookup`, the I/O
edge, with its own time budget), the simulation from a population in memory. `household_from`
makes a household from resources already in hand.

The contract (docs/rules.md, "The household"):

- members come from a FHIR `Group` (type person) that has the patient among its members:
  every other member that is a `Patient` reference, unless marked inactive or its period ended;
- a `RelatedPerson` of the patient that carries an NHS number
  (`https://fhir.nhs.uk/Id/nhs-number`) resolving to a Patient is a member too, unless inactive
  or its period has ended (a former partner), and gives the relationship of a member with that
  NHS number;
- a member's MAPPA risk comes from their Flags (`risk_flags.mappa_risk`).

Nothing here keeps a name, an NHS number or an id in the result: a member is a relationship
(in this module's own words, from coded relationships only, never free text), an age and a risk.

>>> group = {"resourceType": "Group", "type": "person", "member": [
...     {"entity": {"reference": "Patient/mum"}}, {"entity": {"reference": "Patient/son"}}]}
>>> son = {"resourceType": "Patient", "id": "son", "birthDate": "2017-09-01"}
>>> household_from(patient_id="mum", groups=[group], patients=[son],
...     today=datetime.date(2026, 1, 5))
Household(members=(HouseholdMember(relationship=None, age=8, mappa=None),), checked=True)
"""

import datetime
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iris_prompt.engine.fhir_values import (
    as_list,
    as_str,
    codes_of,
    has_ended,
    last_day,
    years_old,
)
from iris_prompt.engine.risk_flags import RISK_EXTENSION, MappaRisk, mappa_risk, strongest

__all__ = [
    "FIELDS_READ",
    "NHS_NUMBER_SYSTEM",
    "UNCHECKED",
    "Household",
    "HouseholdMember",
    "age_on",
    "essentials",
    "group_member_ids",
    "FlagsOf",
    "HouseholdPlan",
    "PatientById",
    "PatientByNhsNumber",
    "Request",
    "household_from",
    "household_plan",
    "nhs_number",
    "related_nhs_numbers",
    "relationship_words",
]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

# v3-RoleCode personal relationships (bound in UK Core RelatedPerson through
# UKCore-PersonRelationshipType) to the words a card uses. A code not listed gives no words
# and the card says "a household member". Free text is never shown: it may hold a name.
RELATIONSHIPS: dict[str, str] = {
    "SPS": "spouse",
    "WIFE": "wife",
    "HUSB": "husband",
    "DOMPART": "partner",
    "SIGOTHR": "partner",
    "FMRSPS": "former spouse",
    "MTH": "mother",
    "FTH": "father",
    "PRN": "parent",
    "STPMTH": "stepmother",
    "STPFTH": "stepfather",
    "STPPRN": "step-parent",
    "MTHFOST": "foster mother",
    "FTHFOST": "foster father",
    "PRNFOST": "foster parent",
    "SON": "son",
    "DAU": "daughter",
    "CHILD": "child",
    "STPSON": "stepson",
    "STPDAU": "stepdaughter",
    "STPCHLD": "stepchild",
    "CHLDFOST": "foster child",
    "BRO": "brother",
    "SIS": "sister",
    "SIB": "sibling",
    "HBRO": "half-brother",
    "HSIS": "half-sister",
    "GRMTH": "grandmother",
    "GRFTH": "grandfather",
    "GRPRN": "grandparent",
    "GRNDSON": "grandson",
    "GRNDDAU": "granddaughter",
    "GRNDCHILD": "grandchild",
    "AUNT": "aunt",
    "UNCLE": "uncle",
    "COUSN": "cousin",
    "NEPHEW": "nephew",
    "NIECE": "niece",
    "ROOM": "housemate",
    "FAMMEMB": "family member",
}


@dataclass(frozen=True, slots=True)
class HouseholdMember:
    """Another person in the household: relationship words (None if not coded), age in whole
    years (None if unknown) and MAPPA risk (None if no MAPPA flag is in force)."""

    relationship: str | None
    age: int | None
    mappa: MappaRisk | None


@dataclass(frozen=True, slots=True)
class Household:
    """The other members of the patient's household. `checked` is False when the household
    could not be looked up (failure, slowness, no FHIR access): then `members` is empty and
    means nothing."""

    members: tuple[HouseholdMember, ...] = ()
    checked: bool = True


UNCHECKED = Household((), checked=False)

# The fields this module (and `risk_flags`) reads, per resource type: a cache of household
# answers keeps only these, and of references and codes no free text (`display`, `text` may
# hold a name or an offence).
FIELDS_READ: dict[str, frozenset[str]] = {
    "Group": frozenset({"resourceType", "id", "type", "active", "member"}),
    "RelatedPerson": frozenset(
        {"resourceType", "id", "active", "patient", "identifier", "relationship", "period"}
    ),
    "Patient": frozenset({"resourceType", "id", "identifier", "birthDate"}),
    "Flag": frozenset({"resourceType", "id", "status", "code", "period", "extension", "subject"}),
}


def _no_text(value: object) -> object:
    """A reference or CodeableConcept (or a list of them) without its free text."""
    if isinstance(value, list):
        return [_no_text(item) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("display", "text")}
    return value


def _member(value: object) -> object:
    if isinstance(value, dict) and "entity" in value:
        return value | {"entity": _no_text(value["entity"])}
    return value


def essentials(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields of `resource` the household is built from, without free text (None for a
    type it never reads).

    >>> essentials({"resourceType": "Patient", "id": "p", "name": [{"family": "X"}]})
    {'resourceType': 'Patient', 'id': 'p'}
    """
    fields = FIELDS_READ.get(str(resource.get("resourceType")))
    if fields is None:
        return None
    kept = {key: value for key, value in resource.items() if key in fields}
    for key in ("patient", "subject", "code", "relationship"):
        if key in kept:
            kept[key] = _no_text(kept[key])
    if isinstance(kept.get("member"), list):
        kept["member"] = [_member(m) for m in kept["member"]]
    if isinstance(kept.get("extension"), list):
        # Only the risk extension is read; other extensions (notes) are never kept.
        kept["extension"] = [
            e
            for e in kept["extension"]
            if not isinstance(e, dict) or e.get("url") == RISK_EXTENSION
        ]
    return kept


def age_on(birth_date: object, today: datetime.date) -> int | None:
    """Age in whole years; a partial birth date ("2010", "2010-05") is read at the last day it
    allows (`fhir_values.last_day`), giving the youngest age it allows, so nobody is taken to be
    16 before they may be.

    >>> age_on("2010", datetime.date(2026, 6, 1)), age_on("2010-05-02", datetime.date(2026, 5, 1))
    (15, 15)
    """
    return years_old(last_day(birth_date), today)


def _patient_id(reference: object) -> str | None:
    """The id in "Patient/x", "https://server/fhir/Patient/x" or ".../Patient/x/_history/2"."""
    if not isinstance(reference, str):
        return None
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def _reference(value: object) -> object:
    return value.get("reference") if isinstance(value, Mapping) else None


def _ended(period: object, now: datetime.date) -> bool:
    """A membership period over at `now` (its end is inclusive at its precision: "2026" is all
    of 2026)."""
    return isinstance(period, Mapping) and has_ended(period.get("end"), now)


def group_member_ids(
    groups: Iterable[Mapping[str, Any]],
    patient_id: str,
    today: datetime.date,
    *,
    now: datetime.datetime | None = None,
) -> list[str]:
    """Patient ids of the other current members of every person Group the patient is in.

    `now`, the time of the call, compares a membership ending at a stated time exactly; without
    it, by the day."""
    moment = now or today
    found: list[str] = []
    for group in groups:
        # A Group's type is required; a malformed one is ignored, like every field read.
        kind = as_str(group.get("type")) or "person"
        if group.get("resourceType") != "Group" or kind != "person" or group.get("active") is False:
            continue
        current = [
            member
            for member in as_list(group.get("member"))
            if isinstance(member, Mapping)
            and member.get("inactive") is not True
            and not _ended(member.get("period"), moment)
        ]
        ids = [_patient_id(_reference(member.get("entity"))) for member in current]
        if patient_id not in ids:
            continue
        found.extend(i for i in ids if i is not None and i != patient_id and i not in found)
    return found


def nhs_number(resource: Mapping[str, Any]) -> str | None:
    for identifier in as_list(resource.get("identifier")):
        if isinstance(identifier, Mapping) and identifier.get("system") == NHS_NUMBER_SYSTEM:
            value = identifier.get("value")
            if isinstance(value, str) and value.strip():
                return value.replace(" ", "")
    return None


def relationship_words(concepts: object) -> str | None:
    """Words for the first coded relationship this module knows; None otherwise."""
    if not isinstance(concepts, list):
        return None
    for concept in concepts:
        if not isinstance(concept, Mapping):
            continue
        for code in codes_of(concept, ROLE_CODE):
            words = RELATIONSHIPS.get(code)
            if words:
                return words
    return None


def related_nhs_numbers(
    related_persons: Iterable[Mapping[str, Any]],
    patient_id: str,
    *,
    now: datetime.date | None = None,
) -> dict[str, str | None]:
    """NHS number -> relationship words, for the patient's active RelatedPersons that carry one.

    Given `now` (the time of the call, or the day), a RelatedPerson whose `period` has ended
    (a former partner) is left out."""
    found: dict[str, str | None] = {}
    for person in related_persons:
        if person.get("resourceType") != "RelatedPerson" or person.get("active") is False:
            continue
        if now is not None and _ended(person.get("period"), now):
            continue
        if _patient_id(_reference(person.get("patient"))) != patient_id:
            continue
        number = nhs_number(person)
        if number is not None:
            found[number] = found.get(number) or relationship_words(person.get("relationship"))
    return found


@dataclass(frozen=True, slots=True)
class PatientById:
    """A household member's Patient, by id (from the household Group)."""

    patient_id: str


@dataclass(frozen=True, slots=True)
class FlagsOf:
    """A household member's Flags."""

    patient_id: str


@dataclass(frozen=True, slots=True)
class PatientByNhsNumber:
    """The Patient a RelatedPerson's NHS number resolves to."""

    number: str


Request = PatientById | FlagsOf | PatientByNhsNumber
Resources = list[dict[str, Any]]
# The plan asks for a list of requests at a time and is sent their answers, in order: the
# resources each request found (none for a Patient that does not exist).
HouseholdPlan = Generator[list[Request], list[Resources], Household]


def household_plan(
    *,
    patient_id: str,
    today: datetime.date,
    groups: Iterable[Mapping[str, Any]] = (),
    related_persons: Iterable[Mapping[str, Any]] = (),
    now: datetime.datetime | None = None,
) -> HouseholdPlan:
    """The household lookup as a plan: which members' Patients and Flags to read, in two rounds,
    and the household made of the answers. The service runs it against the client's FHIR server
    (`engine.lookup`), the simulation against a population in memory (`simulate.run`): one plan,
    two sources, so the simulation counts what the service would show.

    Round one: each other Group member's Patient and Flags, and the Patient each RelatedPerson
    NHS number resolves to. Round two: the Flags of the Patients found by NHS number that are not
    Group members already. No other members: no request at all.
    """
    groups, related_persons = list(groups), list(related_persons)
    member_ids = group_member_ids(groups, patient_id, today, now=now)
    relationships = related_nhs_numbers(related_persons, patient_id, now=now or today)
    if not member_ids and not relationships:
        return Household((), checked=True)
    first: list[Request] = [PatientById(m) for m in member_ids]
    first += [FlagsOf(m) for m in member_ids]
    first += [PatientByNhsNumber(n) for n in relationships]
    answers = yield first
    count = len(member_ids)
    patients = [r for found in answers[:count] for r in found]
    flags = [r for found in answers[count : 2 * count] for r in found]
    resolved = [r for found in answers[2 * count :] for r in found]
    patients += resolved
    extra = sorted(
        {
            r["id"]
            for r in resolved
            if r.get("resourceType") == "Patient"
            and isinstance(r.get("id"), str)
            and r["id"]
            and r["id"] not in member_ids
        }
    )
    if extra:
        more = yield [FlagsOf(pid) for pid in extra]
        flags += [r for found in more for r in found]
    return _household(patient_id, member_ids, relationships, patients, flags, today, now)


def household_from(
    *,
    patient_id: str,
    today: datetime.date,
    groups: Iterable[Mapping[str, Any]] = (),
    related_persons: Iterable[Mapping[str, Any]] = (),
    patients: Iterable[Mapping[str, Any]] = (),
    flags: Iterable[Mapping[str, Any]] = (),
    now: datetime.datetime | None = None,
) -> Household:
    """The household of `patient_id` from resources already in hand (see module docstring).

    `today` dates ages; `now` (the time of the call, when known) compares period ends given to
    the minute exactly, on Group memberships and Flags."""
    member_ids = group_member_ids(groups, patient_id, today, now=now)
    relationships = related_nhs_numbers(related_persons, patient_id, now=now or today)
    return _household(patient_id, member_ids, relationships, patients, flags, today, now)


def _household(
    patient_id: str,
    member_ids: list[str],
    relationships: Mapping[str, str | None],
    patients: Iterable[Mapping[str, Any]],
    flags: Iterable[Mapping[str, Any]],
    today: datetime.date,
    now: datetime.datetime | None,
) -> Household:
    by_id = {
        p["id"]: p
        for p in patients
        if p.get("resourceType") == "Patient" and isinstance(p.get("id"), str) and p["id"]
    }
    member_ids = list(member_ids)
    for pid, patient in by_id.items():
        number = nhs_number(patient)
        if number in relationships and pid != patient_id and pid not in member_ids:
            member_ids.append(pid)
    risks: dict[str, list[MappaRisk]] = {}
    for flag in flags:
        subject = _patient_id(_reference(flag.get("subject")))
        risk = mappa_risk(flag, today, now=now) if subject in member_ids else None
        if subject is not None and risk is not None:
            risks.setdefault(subject, []).append(risk)
    members = []
    for pid in member_ids:
        patient = by_id.get(pid, {})
        number = nhs_number(patient) if patient else None
        members.append(
            HouseholdMember(
                relationship=relationships.get(number) if number else None,
                age=age_on(patient.get("birthDate"), today),
                mappa=strongest(risks.get(pid, ())),
            )
        )
    return Household(tuple(members), checked=True)
