"""The patient's household as plain data: who lives there (relationship, age) and MAPPA risk.

`household_plan(...)` is the lookup as a pure plan (sans I/O): given the household Group and the
patient's RelatedPersons, it asks for the members' Patients and Flags and makes the `Household`
of the answers. The service answers it from the client's FHIR server (`engine.lookup`, the I/O
edge, with its own time budget), the simulation from a population in memory. `household_from`
makes a household from resources already in hand.

The contract (docs/rules.md, "The household"):

- members come from a FHIR `Group` (type person) that has the patient among its members:
  every other member that is a `Patient` reference, unless marked inactive or its period ended;
- a member whose membership `period` ended within the last 12 months (`RECENTLY_LEFT`) is still
  checked, as a person who recently left the household: separation is the highest-risk period
  (and when the patient's own membership ended so recently, the others are that too);
- a `RelatedPerson` of the patient that carries an NHS number
  (`https://fhir.nhs.uk/Id/nhs-number`) resolving to a Patient is checked too, unless inactive
  or its period ended more than 12 months ago, and gives the relationship words of the person
  with that NHS number. A RelatedPerson proves a relationship, not a shared home: unless the
  Group lists them, they are "linked" to the record, not household members;
- a member's MAPPA risk comes from their Flags (`risk_flags.mappa_risk`).

Nothing here keeps a name, an NHS number or an id in the result: a member is a relationship
(in this module's own words, from coded relationships only, never free text), an age and a risk.

>>> group = {"resourceType": "Group", "type": "person", "member": [
...     {"entity": {"reference": "Patient/mum"}}, {"entity": {"reference": "Patient/son"}}]}
>>> son = {"resourceType": "Patient", "id": "son", "birthDate": "2017-09-01"}
>>> household_from(patient_id="mum", groups=[group], patients=[son],
...     today=datetime.date(2026, 1, 5)).members
(HouseholdMember(relationship=None, age=8, mappa=None, presence='member'),)
"""

import datetime
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, replace
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
    "MAX_MEMBERS",
    "NHS_NUMBER_SYSTEM",
    "TOO_LARGE",
    "UNCHECKED",
    "Household",
    "HouseholdMember",
    "age_on",
    "essentials",
    "group_member_ids",
    "group_members",
    "related_people",
    "FlagsOf",
    "HouseholdPlan",
    "PatientById",
    "PatientByNhsNumber",
    "RegisterFlagsOf",
    "Request",
    "household_from",
    "household_plan",
    "nhs_number",
    "relationship_words",
]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
# A person who left the household this recently is still checked for MAPPA flags.
RECENTLY_LEFT = datetime.timedelta(days=365)
# Where a person checked stands to the patient: in the household Group, left it (or the patient
# left them) within `RECENTLY_LEFT`, or linked to the record by a RelatedPerson only.
MEMBER, LEFT, LINKED = "member", "left", "linked"
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
    """Another person checked: relationship words (None if not coded), age in whole years (None
    if unknown), MAPPA risk (None if no MAPPA flag is in force) and `presence`: "member" (the
    household Group lists them), "left" (left the household within 12 months) or "linked" (a
    RelatedPerson of the patient whom the Group does not list: not known to live there)."""

    relationship: str | None
    age: int | None
    mappa: MappaRisk | None
    presence: str = MEMBER


@dataclass(frozen=True, slots=True)
class Household:
    """The other members of the patient's household. `checked` is False when the household
    could not be looked up (failure, slowness, no FHIR access): then `members` is empty and
    means nothing, and `members_known` says whether the Group or RelatedPersons had shown there
    were people to check. `not_checked` names a part that could not be looked up when the rest
    was ("household-group": the Group search; "related-persons": the RelatedPerson search).
    `too_large` (never checked) says why it was not: more other members than a household has
    (`MAX_MEMBERS`), as in a care home's, a hostel's or a practice-wide Group. `timed_out`
    (never checked): the lookup ran over its time budget (counted for operators; the card says
    only that the household was not checked)."""

    members: tuple[HouseholdMember, ...] = ()
    checked: bool = True
    not_checked: tuple[str, ...] = ()
    members_known: bool = False
    too_large: bool = False
    timed_out: bool = False


UNCHECKED = Household((), checked=False)
# A Group too large to be a household has people in it: members are known (rule 8).
TOO_LARGE = Household((), checked=False, members_known=True, too_large=True)
# The most other members a household has (IRIS_HOUSEHOLD_MAX_MEMBERS): a larger Group is not a
# household, and its members are never read (each costs two reads of the FHIR server).
MAX_MEMBERS = 20

# The fields this module (and `risk_flags`) reads, per resource type: a cache of household
# answers keeps only these, and of references and codes no free text (`display`, `text` may
# hold a name or an offence).
FIELDS_READ: dict[str, frozenset[str]] = {
    "Group": frozenset({"resourceType", "id", "type", "active", "member"}),
    "RelatedPerson": frozenset(
        {"resourceType", "id", "active", "patient", "identifier", "relationship", "period"}
    ),
    "Patient": frozenset({"resourceType", "id", "identifier", "birthDate"}),
    "Flag": frozenset(
        {"resourceType", "id", "identifier", "status", "code", "period", "extension", "subject"}
    ),
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


def _left_recently(period: object, now: datetime.date) -> bool:
    """A membership period that ended, within `RECENTLY_LEFT` of `now`."""
    if not isinstance(period, Mapping):
        return False
    end = period.get("end")
    return has_ended(end, now) and not has_ended(end, now - RECENTLY_LEFT)


def _standing(member: Mapping[str, Any], now: datetime.date) -> str | None:
    """MEMBER, LEFT or None (not checked: left long ago, or inactive with no date)."""
    period = member.get("period")
    if _left_recently(period, now):
        return LEFT
    if member.get("inactive") is True or _ended(period, now):
        return None
    return MEMBER


def group_members(
    groups: Iterable[Mapping[str, Any]],
    patient_id: str,
    today: datetime.date,
    *,
    now: datetime.datetime | None = None,
) -> dict[str, str]:
    """Patient id -> MEMBER or LEFT, for the other people of every person Group the patient is
    in, or left within `RECENTLY_LEFT` (then every other member is LEFT: they separated).

    `now`, the time of the call, compares a membership ending at a stated time exactly; without
    it, by the day."""
    moment = now or today
    found: dict[str, str] = {}
    for group in groups:
        # A Group's type is required; a malformed one is ignored, like every field read.
        kind = as_str(group.get("type")) or "person"
        if group.get("resourceType") != "Group" or kind != "person" or group.get("active") is False:
            continue
        standings: list[tuple[str | None, str]] = []
        for member in as_list(group.get("member")):
            if not isinstance(member, Mapping):
                continue
            standing = _standing(member, moment)
            if standing is not None:
                standings.append((_patient_id(_reference(member.get("entity"))), standing))
        own = {standing for pid, standing in standings if pid == patient_id}
        if not own:
            continue
        patient_left = MEMBER not in own
        for pid, standing in standings:
            if pid is None or pid == patient_id:
                continue
            standing = LEFT if patient_left else standing
            if found.get(pid) != MEMBER:
                found[pid] = standing
    return found


def group_member_ids(
    groups: Iterable[Mapping[str, Any]],
    patient_id: str,
    today: datetime.date,
    *,
    now: datetime.datetime | None = None,
) -> list[str]:
    """Patient ids of the other current members of every person Group the patient is in."""
    members = group_members(groups, patient_id, today, now=now)
    return [pid for pid, standing in members.items() if standing == MEMBER]


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


def related_people(
    related_persons: Iterable[Mapping[str, Any]],
    patient_id: str,
    *,
    now: datetime.date,
) -> dict[str, tuple[str | None, str]]:
    """NHS number -> (relationship words, LINKED or LEFT), for the patient's RelatedPersons that
    carry one: active and current (LINKED), or whose period ended within `RECENTLY_LEFT` (LEFT)."""
    found: dict[str, tuple[str | None, str]] = {}
    for person in related_persons:
        if person.get("resourceType") != "RelatedPerson" or person.get("active") is False:
            continue
        period = person.get("period")
        if _left_recently(period, now):
            standing = LEFT
        elif _ended(period, now):
            continue
        else:
            standing = LINKED
        if _patient_id(_reference(person.get("patient"))) != patient_id:
            continue
        number = nhs_number(person)
        if number is None:
            continue
        words, before = found.get(number, (None, standing))
        words = words or relationship_words(person.get("relationship"))
        found[number] = (words, LEFT if LEFT in (before, standing) else LINKED)
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


@dataclass(frozen=True, slots=True)
class RegisterFlagsOf:
    """The shared MAPPA register's flags in force on the person with this NHS number."""

    number: str


Request = PatientById | FlagsOf | PatientByNhsNumber | RegisterFlagsOf
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
    max_members: int = MAX_MEMBERS,
    register: bool = False,
) -> HouseholdPlan:
    """The household lookup as a plan: which members' Patients and Flags to read, in two rounds,
    and the household made of the answers. The service runs it against the client's FHIR server
    (`engine.lookup`), the simulation against a population in memory (`simulate.run`): one plan,
    two sources, so the simulation counts what the service would show.

    Round one: each other Group member's (or recent member's) Patient and Flags, and the Patient
    each RelatedPerson NHS number resolves to. Round two: the Flags of the Patients found by NHS
    number that are not Group members already. No other people: no request at all. More than
    `max_members` other members (in the Groups, among the RelatedPersons, or found in all):
    `TOO_LARGE`, and more than that in the Groups or RelatedPersons asks for nothing at all.

    With `register`, round two also asks the shared MAPPA register for the flags of every
    person found whose Patient carries an NHS number (`RegisterFlagsOf`): used alongside the
    FHIR server's, the same flag from both (a shared identifier) counted once.
    """
    groups, related_persons = list(groups), list(related_persons)
    members = group_members(groups, patient_id, today, now=now)
    member_ids = list(members)
    relationships = related_people(related_persons, patient_id, now=now or today)
    if len(member_ids) > max_members or len(relationships) > max_members:
        return TOO_LARGE
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
    numbers: dict[str, list[str]] = {}
    if register:
        for r in patients:
            number = nhs_number(r) if r.get("resourceType") == "Patient" else None
            pid = r.get("id")
            if (
                number
                and isinstance(pid, str)
                and pid != patient_id
                and pid not in numbers.get(number, ())
            ):
                numbers.setdefault(number, []).append(pid)
    second: list[Request] = [FlagsOf(pid) for pid in extra]
    second += [RegisterFlagsOf(n) for n in numbers]
    shared: list[tuple[str, Mapping[str, Any]]] = []
    if second:
        more = yield second
        flags += [r for found in more[: len(extra)] for r in found]
        for number, found in zip(numbers, more[len(extra) :], strict=True):
            shared += [(pid, flag) for flag in found for pid in numbers[number]]
    household = _household(patient_id, members, relationships, patients, flags, today, now, shared)
    return TOO_LARGE if len(household.members) > max_members else household


def household_from(
    *,
    patient_id: str,
    today: datetime.date,
    groups: Iterable[Mapping[str, Any]] = (),
    related_persons: Iterable[Mapping[str, Any]] = (),
    patients: Iterable[Mapping[str, Any]] = (),
    flags: Iterable[Mapping[str, Any]] = (),
    now: datetime.datetime | None = None,
    max_members: int = MAX_MEMBERS,
) -> Household:
    """The household of `patient_id` from resources already in hand (see module docstring).

    `today` dates ages; `now` (the time of the call, when known) compares period ends given to
    the minute exactly, on Group memberships and Flags. More than `max_members` other members:
    `TOO_LARGE`, as in `household_plan`."""
    members = group_members(groups, patient_id, today, now=now)
    relationships = related_people(related_persons, patient_id, now=now or today)
    if len(members) > max_members or len(relationships) > max_members:
        return TOO_LARGE
    household = _household(patient_id, members, relationships, patients, flags, today, now)
    return TOO_LARGE if len(household.members) > max_members else household


def _identifiers(flag: Mapping[str, Any]) -> set[tuple[str, str]]:
    """A flag's identifiers (system, value): the same flag from two sources shares one."""
    return {
        (i["system"], i["value"])
        for i in as_list(flag.get("identifier"))
        if isinstance(i, Mapping)
        and isinstance(i.get("system"), str)
        and isinstance(i.get("value"), str)
    }


def _household(
    patient_id: str,
    members: Mapping[str, str],
    relationships: Mapping[str, tuple[str | None, str]],
    patients: Iterable[Mapping[str, Any]],
    flags: Iterable[Mapping[str, Any]],
    today: datetime.date,
    now: datetime.datetime | None,
    shared: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> Household:
    by_id = {
        p["id"]: p
        for p in patients
        if p.get("resourceType") == "Patient" and isinstance(p.get("id"), str) and p["id"]
    }
    presence = dict(members)
    for pid, patient in by_id.items():
        number = nhs_number(patient)
        if number is not None and number in relationships and pid != patient_id:
            # The Group decides co-residence: a RelatedPerson alone is linked (or left).
            presence.setdefault(pid, relationships[number][1])
    risks: dict[str, list[MappaRisk]] = {}
    # The register's flags first: a copy of one in the GP record counts once, as the register's.
    counted: dict[str, set[tuple[str, str]]] = {}
    sources: list[tuple[str | None, Mapping[str, Any], bool]] = [
        (pid, flag, True) for pid, flag in shared
    ]
    sources += [(_patient_id(_reference(f.get("subject"))), f, False) for f in flags]
    for subject, flag, from_register in sources:
        risk = mappa_risk(flag, today, now=now) if subject in presence else None
        if subject is None or risk is None:
            continue
        keys = _identifiers(flag)
        if keys & counted.get(subject, set()):
            continue
        counted.setdefault(subject, set()).update(keys)
        if from_register:
            risk = replace(risk, flags=(str(flag["meta"]["source"]),))
        risks.setdefault(subject, []).append(risk)
    found = []
    for pid, standing in presence.items():
        patient = by_id.get(pid, {})
        number = nhs_number(patient) if patient else None
        related = relationships.get(number) if number else None
        found.append(
            HouseholdMember(
                relationship=related[0] if related else None,
                age=age_on(patient.get("birthDate"), today),
                mappa=strongest(risks.get(pid, ())),
                presence=standing,
            )
        )
    return Household(tuple(found), checked=True)
