"""Who the patient's household is, read from the Group and the RelatedPersons (pure).

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
  Group lists them, they are "linked" to the record, not household members.

What each person checked turns into (age, MAPPA risk) is `household.py`; which of them to read
from a FHIR server is `household_plan.py`.

>>> group = {"resourceType": "Group", "type": "person", "member": [
...     {"entity": {"reference": "Patient/mum"}}, {"entity": {"reference": "Patient/son"}},
...     {"entity": {"reference": "Patient/dad"}, "period": {"end": "2025-11-30"}}]}
>>> group_members([group], "mum", datetime.date(2026, 1, 5))
{'son': 'member', 'dad': 'left'}
"""

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from iris_prompt.engine.fhir_values import as_list, as_str, codes_of, has_ended

__all__ = [
    "LEFT",
    "LINKED",
    "MEMBER",
    "NHS_NUMBER_SYSTEM",
    "RECENTLY_LEFT",
    "RELATIONSHIPS",
    "group_members",
    "nhs_number",
    "referenced_patient",
    "related_people",
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


def referenced_patient(value: object) -> str | None:
    """The Patient id a FHIR Reference (`{"reference": "Patient/x"}`) points at, if any.

    >>> referenced_patient({"reference": "https://gp.example/fhir/Patient/x/_history/2"})
    'x'
    """
    return _patient_id(_reference(value))


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
                standings.append((referenced_patient(member.get("entity")), standing))
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
        if referenced_patient(person.get("patient")) != patient_id:
            continue
        number = nhs_number(person)
        if number is None:
            continue
        words, before = found.get(number, (None, standing))
        words = words or relationship_words(person.get("relationship"))
        found[number] = (words, LEFT if LEFT in (before, standing) else LINKED)
    return found
