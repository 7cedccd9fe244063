"""The household lookup as a pure plan (sans I/O): which members' Patients and Flags to read.

Given the household Group and the patient's RelatedPersons (`membership.py`), the plan asks for
the members' Patients and Flags, in two rounds, and makes the `Household` of the answers
(`household.build_household`). The service answers it from the client's FHIR server
(`engine.lookup`, the I/O edge, with its own time budget), the simulation from a population in
memory (`simulate.run`): one plan, two sources, so the simulation counts what the service would
show.

>>> group = {"resourceType": "Group", "type": "person", "member": [
...     {"entity": {"reference": "Patient/mum"}}, {"entity": {"reference": "Patient/son"}}]}
>>> plan = household_plan(patient_id="mum", groups=[group], today=datetime.date(2026, 1, 5))
>>> next(plan)
[PatientById(patient_id='son'), FlagsOf(patient_id='son')]
"""

import datetime
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iris_prompt.engine.household import MAX_MEMBERS, TOO_LARGE, Household, build_household
from iris_prompt.engine.membership import group_members, nhs_number, related_people

__all__ = [
    "FlagsOf",
    "HouseholdPlan",
    "PatientById",
    "PatientByNhsNumber",
    "RegisterFlagsOf",
    "Request",
    "Resources",
    "household_plan",
]


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
    household = build_household(
        patient_id, members, relationships, patients, flags, today, now, shared
    )
    return TOO_LARGE if len(household.members) > max_members else household
