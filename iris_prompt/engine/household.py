"""The patient's household as plain data: who lives there (relationship, age) and MAPPA risk.

`household_from` makes a household from resources already in hand; `build_household` makes it
from the members found (`membership.py`: the Group and the RelatedPersons) and the Patients and
Flags read for them, as the household plan does (`household_plan.py`, answered by the service
from the client's FHIR server and by the simulation from a population in memory). A member's
MAPPA risk comes from their Flags (`risk_flags.mappa_risk`).

Nothing here keeps a name, an NHS number or an id in the result: a member is a relationship
(in `membership.RELATIONSHIPS`' words, from coded relationships only, never free text), an age
and a risk.

>>> group = {"resourceType": "Group", "type": "person", "member": [
...     {"entity": {"reference": "Patient/mum"}}, {"entity": {"reference": "Patient/son"}}]}
>>> son = {"resourceType": "Patient", "id": "son", "birthDate": "2017-09-01"}
>>> household_from(patient_id="mum", groups=[group], patients=[son],
...     today=datetime.date(2026, 1, 5)).members
(HouseholdMember(relationship=None, age=8, mappa=None, presence='member'),)
"""

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from iris_prompt.engine.fhir_values import as_list, last_day, years_old
from iris_prompt.engine.membership import (
    MEMBER,
    group_members,
    nhs_number,
    referenced_patient,
    related_people,
)
from iris_prompt.engine.risk_flags import RISK_EXTENSION, MappaRisk, mappa_risk, strongest

__all__ = [
    "FIELDS_READ",
    "MAX_MEMBERS",
    "TOO_LARGE",
    "UNCHECKED",
    "Household",
    "HouseholdMember",
    "age_on",
    "build_household",
    "essentials",
    "household_from",
]


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

# The fields the household is read from (here, in `membership` and in `risk_flags`), per
# resource type: a cache of household answers keeps only these, and of references and codes no
# free text (`display`, `text` may hold a name or an offence).
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
    household = build_household(patient_id, members, relationships, patients, flags, today, now)
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


def build_household(
    patient_id: str,
    members: Mapping[str, str],
    relationships: Mapping[str, tuple[str | None, str]],
    patients: Iterable[Mapping[str, Any]],
    flags: Iterable[Mapping[str, Any]],
    today: datetime.date,
    now: datetime.datetime | None,
    shared: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> Household:
    """The household of the people found (`members`: Group standing by patient id;
    `relationships`: relationship words and standing by NHS number) from their Patients and
    Flags. `today` dates ages; `now`, when known, compares Flag period ends exactly. `shared`:
    the shared MAPPA register's flags, by patient id, counted before the GP record's own (a
    copy carrying the same identifier counts once, as the register's)."""
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
    sources += [(referenced_patient(f.get("subject")), f, False) for f in flags]
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
