"""MAPPA risk flags: what a FHIR `Flag` on a household member says, read as plain data.

The profile (README "The MAPPA risk flag") follows the real precedents: the Yorkshire & Humber
shared care record's Interweave Flag (GitHub yorkshire-and-humber-care-record/fhir-ig-r4:
category "Risk to other" RTO, local flag type MAPPA) and NHS England's draft patient flags
(GitHub NHSDigital/ra-sandbox, CP-IS: a SNOMED CT concept in `Flag.code`, details in
extensions). A MAPPA flag here is:

- `Flag.code` holds SNOMED CT 495021000000105 "Subject of multi-agency public protection
  arrangements" (the recording code set's `mappa` category; source in codesets/recording.csv);
- `Flag.status` is active, and `Flag.period` has started and not ended;
- risk of serious harm per group is in repeated `RISK_EXTENSION` extensions, each with a `group`
  (children, known-adult, public, staff) and a `level` (low, medium, high, very-high) Coding.
  No national codes for these were found in the published UK code lists (OpenCodelists, the ACEs
  in EHRs lists, NHS England's flag profiles), so they are this project's own code systems. A risk
  extension that is there but cannot be read makes the risk `unreadable`: the card says so and
  is critical. A flag with no risk extension at all is critical too: unknown risk is high risk.

Offences, MAPPA category and level, free text (`Flag.code.text`, notes) are never read: a card
says *that* a household member is subject to MAPPA and the risk levels, nothing more.

>>> flag = {"resourceType": "Flag", "status": "active",
...     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "495021000000105"}]},
...     "extension": [risk_extension("known-adult", "very-high")]}
>>> mappa_risk(flag, datetime.date(2026, 1, 1))
MappaRisk(levels=(('known-adult', 'very-high'),), unreadable=False)
"""

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.engine.fhir_values import as_list, as_str, codes_of, has_ended, has_started
from iris_prompt.urls import GROUP_SYSTEM, LEVEL_SYSTEM, RISK_EXTENSION

__all__ = [
    "GROUPS",
    "GROUP_SYSTEM",
    "LEVELS",
    "LEVEL_SYSTEM",
    "MAPPA_CODE",
    "RISK_EXTENSION",
    "MappaRisk",
    "mappa_risk",
    "risk_extension",
    "strongest",
]

MAPPA_CODE = "495021000000105"

# The groups and levels of the probation risk of serious harm assessment (domain.md), in the
# order a card lists them, with the words it uses.
GROUPS: dict[str, str] = {
    "known-adult": "a known adult",
    "children": "children",
    "public": "the public",
    "staff": "staff",
}
LEVELS: dict[str, str] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "very-high": "very high",
}
_RANK = {level: rank for rank, level in enumerate(LEVELS)}
# Risk to these groups at these levels makes the card critical: the people a clinician of the
# household sees, at the levels probation treats as likely to cause serious harm.
CRITICAL_GROUPS = frozenset({"known-adult", "children"})
CRITICAL_LEVELS = frozenset({"high", "very-high"})
INACTIVE = frozenset({"inactive", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class MappaRisk:
    """An active MAPPA flag: risk level per group, in `GROUPS` order (empty if not given).

    `unreadable` is True when the flag carries risk-of-serious-harm information that cannot be
    read (a level spelt otherwise, a code instead of a Coding, a malformed extension): then the
    card says so and is critical, the safe default for a MAPPA flag whose level is unknown.
    """

    levels: tuple[tuple[str, str], ...]
    unreadable: bool = False
    # The flags this risk was read from ("Flag/id"), for the disclosure audit only: cards never
    # show them. Not part of the risk's value (two flags of equal levels are the same risk).
    flags: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def critical(self) -> bool:
        """High or very high risk to a known adult or to children, or levels unreadable or not
        given at all: a MAPPA flag whose risk is unknown is treated as high risk."""
        return (
            self.unreadable
            or not self.levels
            or any(g in CRITICAL_GROUPS and lv in CRITICAL_LEVELS for g, lv in self.levels)
        )


def _coding_code(value: object, system: str) -> str | None:
    if isinstance(value, Mapping) and value.get("system") == system:
        code = value.get("code")
        return code if isinstance(code, str) else None
    return None


def _is_mappa(flag: Mapping[str, Any]) -> bool:
    return MAPPA_CODE in codes_of(flag.get("code"), SNOMED_CT)


def _in_force(flag: Mapping[str, Any], now: datetime.date) -> bool:
    if flag.get("status") != "active":
        return False
    period = flag.get("period")
    if not isinstance(period, Mapping):
        return True
    # A period's end is inclusive at its precision: an end of "2026" is the whole of 2026, one
    # of "2026-11-26" the whole of that day; an end with a time is that instant.
    return has_started(period.get("start"), now) and not has_ended(period.get("end"), now)


def _levels(flag: Mapping[str, Any]) -> MappaRisk:
    """The risk levels per group, and whether risk information is there but unreadable."""
    found: dict[str, str] = {}
    extensions = flag.get("extension")
    unreadable = extensions is not None and not isinstance(extensions, list)
    for extension in as_list(extensions):
        if not isinstance(extension, Mapping):
            unreadable = True  # it might have been the risk extension
            continue
        if extension.get("url") != RISK_EXTENSION:
            continue  # other extensions are allowed, and not ours to read
        parts = {
            part["url"]: part.get("valueCoding")
            for part in as_list(extension.get("extension"))
            if isinstance(part, Mapping) and isinstance(part.get("url"), str)
        }
        group = _coding_code(parts.get("group"), GROUP_SYSTEM)
        level = _coding_code(parts.get("level"), LEVEL_SYSTEM)
        if group not in GROUPS or level not in LEVELS:
            unreadable = True
            continue
        # Two assessments for one group: the higher level stands.
        if group not in found or _RANK[level] > _RANK[found[group]]:
            found[group] = level
    levels = tuple((group, found[group]) for group in GROUPS if group in found)
    return MappaRisk(levels, unreadable)


def mappa_risk(
    flag: Mapping[str, Any], today: datetime.date, *, now: datetime.datetime | None = None
) -> MappaRisk | None:
    """The risk a Flag records, or None unless it is a MAPPA flag in force `today` (at `now`,
    the time of the call, when given: a period bound with a time is compared as an instant).

    Not MAPPA, not active (inactive, entered-in-error), not started or ended: None, and the card
    shows nothing about it.
    """
    if flag.get("resourceType", "Flag") != "Flag" or as_str(flag.get("status")) in INACTIVE:
        return None
    if not _is_mappa(flag) or not _in_force(flag, now or today):
        return None
    risk = _levels(flag)
    flag_id = flag.get("id")
    return replace(risk, flags=(f"Flag/{flag_id}",)) if isinstance(flag_id, str) else risk


def strongest(risks: Iterable[MappaRisk]) -> MappaRisk | None:
    """Several MAPPA flags on one person as one risk: the highest level per group, and
    unreadable if any flag's levels are."""
    best: dict[str, str] = {}
    flags: list[str] = []
    found, unreadable = False, False
    for risk in risks:
        found = True
        flags.extend(f for f in risk.flags if f not in flags)
        unreadable = unreadable or risk.unreadable
        for group, level in risk.levels:
            if group not in best or _RANK[level] > _RANK[best[group]]:
                best[group] = level
    if not found:
        return None
    return MappaRisk(tuple((g, best[g]) for g in GROUPS if g in best), unreadable, tuple(flags))


def risk_extension(group: str, level: str) -> dict[str, Any]:
    """One risk-of-serious-harm extension, as a flag publisher writes it (and tests build it)."""
    if group not in GROUPS or level not in LEVELS:
        raise ValueError(f"group must be one of {list(GROUPS)}, level one of {list(LEVELS)}")
    return {
        "url": RISK_EXTENSION,
        "extension": [
            {"url": "group", "valueCoding": {"system": GROUP_SYSTEM, "code": group}},
            {"url": "level", "valueCoding": {"system": LEVEL_SYSTEM, "code": level}},
        ],
    }
