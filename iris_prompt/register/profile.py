"""The register's MAPPA flag profile: which Flags it accepts, as a pure check over plain data.

    problems = check_flag(resource, now=now)   # [] when the Flag may be stored
    (its StructureDefinition, at /fhir/StructureDefinition: register/structure.py)

A register flag is the engine's MAPPA flag (`engine.risk_flags`, README "The MAPPA risk flag")
with what a shared register needs to be safe:

- `code` carries SNOMED CT 495021000000105 (the recording code set's `mappa` concept);
- `subject` is the Patient, by identifier: an NHS number (`https://fhir.nhs.uk/Id/nhs-number`)
  whose modulus 11 check digit is right (NHS Data Dictionary, "NHS number"); a `reference`, if
  given, is to a Patient. A mistyped number would put the flag on someone else;
- `period.start`, and `period.end`, the review date, at most 12 months after the time of
  writing (MAPPA levels are reviewed; a flag nobody reviews lapses instead of lingering), and
  not before the start;
- one or more risk-of-serious-harm extensions, each with a known group and level: a register
  never stores a flag whose risk the card could only call unreadable;
- `author` is the publishing organisation by ODS code
  (`https://fhir.nhs.uk/Id/ods-organization-code`);
- `status` active, inactive or entered-in-error; entered-in-error needs a reason
  (`STATUS_REASON_EXTENSION`, a string), so the owner's record says why;
- no `modifierExtension` or `implicitRules` anywhere: the register understands none, and a
  modifier it ignored could reverse what the flag says.

Every problem is named by its FHIRPath (`Flag.subject.identifier.value`), so the publisher's
OperationOutcome says what to fix. Structure is checked with fhir.resources (R4B, which is R4
for these elements) first, then the profile's own rules.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from fhir.resources.R4B.flag import Flag as R4Flag

from iris_prompt.engine.fhir_values import PRACTICE_TIME_ZONE
from iris_prompt.engine.risk_flags import GROUP_SYSTEM, GROUPS, LEVEL_SYSTEM, LEVELS, MAPPA_CODE
from iris_prompt.register.identifiers import NHS_NUMBER_SYSTEM, ODS_CODE, ODS_SYSTEM
from iris_prompt.urls import CANONICAL_BASE, RISK_EXTENSION

__all__ = [
    "FLAG_IDENTIFIER_SYSTEM",
    "NHS_NUMBER_SYSTEM",
    "ODS_SYSTEM",
    "PROFILE_URL",
    "STATUS_REASON_EXTENSION",
    "Problem",
    "author_ods",
    "check_flag",
    "fhir_instant",
    "nhs_number_valid",
    "period_end_instant",
    "subject_nhs_number",
]

PROFILE_URL = f"{CANONICAL_BASE}/StructureDefinition/mappa-register-flag"
STATUS_REASON_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/status-reason"
# The register's own identifier of each flag, added when it is first stored: a GP system that
# copies the flag keeps it, and the household check counts the two copies once.
FLAG_IDENTIFIER_SYSTEM = f"{CANONICAL_BASE}/Id/mappa-register-flag"
SNOMED_CT = "http://snomed.info/sct"
STATUSES = ("active", "inactive", "entered-in-error")
REVIEW_WITHIN_MONTHS = 12
MAX_REASON_CHARS = 400


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a Flag is refused: where (FHIRPath) and what."""

    expression: str
    message: str


def nhs_number_valid(value: str) -> bool:
    """Ten digits whose tenth is the modulus 11 check digit of the first nine (weights 10..2;
    11 - remainder, 11 means 0, 10 means the number is invalid).

    >>> nhs_number_valid("9990000018"), nhs_number_valid("9990000019")
    (True, False)
    """
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    total = sum(
        int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(value[9])


def _identifier_value(reference: object, system: str) -> str | None:
    if not isinstance(reference, Mapping):
        return None
    identifier = reference.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("system") == system:
        value = identifier.get("value")
        return value if isinstance(value, str) else None
    return None


def subject_nhs_number(flag: Mapping[str, Any]) -> str | None:
    return _identifier_value(flag.get("subject"), NHS_NUMBER_SYSTEM)


def author_ods(flag: Mapping[str, Any]) -> str | None:
    return _identifier_value(flag.get("author"), ODS_SYSTEM)


def fhir_instant(text: str, *, end: bool) -> datetime.datetime:
    """A FHIR date or dateTime as an instant (UTC): a date's end is the end of that day in
    England, as the engine reads it (an end is inclusive at its precision). ValueError also
    for an instant a datetime cannot hold (the end of 9999-12-31, a time before year 1 UTC)."""
    try:
        return _instant(text, end=end)
    except OverflowError:
        raise ValueError("beyond the dates the register can hold") from None


def _instant(text: str, *, end: bool) -> datetime.datetime:
    if len(text) in (4, 7, 10):
        parts = [int(p) for p in text.split("-")]
        year, month, day = (parts + [1, 1])[:3]
        first = datetime.date(year, month, day)
        if end:
            if len(text) == 4:
                first = datetime.date(year + 1, 1, 1)
            elif len(text) == 7:
                first = datetime.date(year + (month == 12), month % 12 + 1, 1)
            else:
                first += datetime.timedelta(days=1)
        local = datetime.datetime(first.year, first.month, first.day, tzinfo=PRACTICE_TIME_ZONE)
        return local.astimezone(datetime.UTC)
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a dateTime with a time needs a time zone")
    return value.astimezone(datetime.UTC)


def period_end_instant(flag: Mapping[str, Any]) -> datetime.datetime | None:
    """When a stored flag's period ends (exclusive), or None if it has no readable end."""
    period = flag.get("period")
    end = period.get("end") if isinstance(period, Mapping) else None
    try:
        return fhir_instant(end, end=True) if isinstance(end, str) else None
    except ValueError:
        return None


def _one_year_after(moment: datetime.datetime) -> datetime.datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _structure(flag: Mapping[str, Any]) -> list[Problem]:
    try:
        R4Flag.model_validate(dict(flag))
    except pydantic.ValidationError as error:
        found = []
        for detail in error.errors():
            path = ".".join(
                f"[{part}]" if isinstance(part, int) else str(part) for part in detail["loc"]
            ).replace(".[", "[")
            found.append(Problem(f"Flag.{path}" if path else "Flag", detail["msg"]))
        return found
    return []


def _period(flag: Mapping[str, Any], now: datetime.datetime) -> list[Problem]:
    period = flag.get("period")
    if not isinstance(period, Mapping) or not isinstance(period.get("start"), str):
        return [Problem("Flag.period.start", "period.start is required")]
    if not isinstance(period.get("end"), str):
        return [Problem("Flag.period.end", "period.end, the review date, is required")]
    instants = []
    for key, is_end in (("start", False), ("end", True)):
        try:
            instants.append(fhir_instant(period[key], end=is_end))
        except ValueError:  # its message may quote the value: never echoed
            message = f"period.{key}: not a FHIR date or dateTime between years 1 and 9999"
            return [Problem(f"Flag.period.{key}", message)]
    start, end = instants
    found = []
    if end <= start:
        found.append(Problem("Flag.period.end", "period.end is before period.start"))
    if flag.get("status") == "active" and end > _one_year_after(now):
        found.append(
            Problem(
                "Flag.period.end",
                f"period.end (the review date) is more than {REVIEW_WITHIN_MONTHS} months "
                "ahead: MAPPA levels are reviewed; publish the next review date",
            )
        )
    return found


def _risk(flag: Mapping[str, Any]) -> list[Problem]:
    extensions = flag.get("extension") or []
    risks = [
        (i, e)
        for i, e in enumerate(extensions)
        if isinstance(e, Mapping) and e.get("url") == RISK_EXTENSION
    ]
    if not risks:
        return [Problem("Flag.extension", f"at least one {RISK_EXTENSION} extension is required")]
    found = []
    for i, extension in risks:
        parts = {
            p.get("url"): p.get("valueCoding")
            for p in extension.get("extension") or []
            if isinstance(p, Mapping)
        }
        for part, system, codes in (
            ("group", GROUP_SYSTEM, GROUPS),
            ("level", LEVEL_SYSTEM, LEVELS),
        ):
            coding = parts.get(part)
            if not (
                isinstance(coding, Mapping)
                and coding.get("system") == system
                and coding.get("code") in codes
            ):
                where = f"Flag.extension[{i}].extension('{part}')"
                found.append(Problem(where, f"{part}: one of {list(codes)}"))
    return found


def _modifiers(value: object, path: str = "Flag") -> list[Problem]:
    """Every modifier this register does not understand, at any depth: a modifierExtension or
    implicitRules may change what the flag means (negate it, for one), and FHIR forbids
    processing a resource as if an unknown modifier were absent. The register knows none."""
    found = []
    if isinstance(value, Mapping):
        for key in ("modifierExtension", "implicitRules"):
            if key in value:
                found.append(Problem(f"{path}.{key}", f"{key} is not understood here: remove it"))
        for key, item in value.items():
            found += _modifiers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _modifiers(item, f"{path}[{i}]")
    return found


def _status(flag: Mapping[str, Any]) -> list[Problem]:
    status = flag.get("status")
    if status not in STATUSES:
        return [Problem("Flag.status", f"status: one of {', '.join(STATUSES)}")]
    if status != "entered-in-error":
        return []
    reasons = [
        e.get("valueString")
        for e in flag.get("extension") or []
        if isinstance(e, Mapping) and e.get("url") == STATUS_REASON_EXTENSION
    ]
    if not any(isinstance(r, str) and 0 < len(r.strip()) <= MAX_REASON_CHARS for r in reasons):
        return [
            Problem(
                "Flag.extension('status-reason')",
                f"entered-in-error needs a reason: a {STATUS_REASON_EXTENSION} extension with "
                f"a valueString of at most {MAX_REASON_CHARS} characters",
            )
        ]
    return []


def _subject(flag: Mapping[str, Any]) -> list[Problem]:
    subject = flag.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if reference is not None and not str(reference).startswith("Patient/"):
        return [Problem("Flag.subject.reference", "the subject must be a Patient")]
    number = subject_nhs_number(flag)
    if number is None:
        return [
            Problem(
                "Flag.subject.identifier",
                f"the subject must carry an NHS number ({NHS_NUMBER_SYSTEM})",
            )
        ]
    if not nhs_number_valid(number):
        return [
            Problem(
                "Flag.subject.identifier.value",
                "not a valid NHS number (10 digits with a modulus 11 check digit)",
            )
        ]
    return []


def _author(flag: Mapping[str, Any]) -> list[Problem]:
    ods = author_ods(flag)
    if ods is None:
        return [Problem("Flag.author.identifier", f"the author must be an ODS code ({ODS_SYSTEM})")]
    if not ODS_CODE.fullmatch(ods):
        return [Problem("Flag.author.identifier.value", "not an ODS code (3-10 A-Z and 0-9)")]
    return []


def _code(flag: Mapping[str, Any]) -> list[Problem]:
    code = flag.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    for coding in codings or []:
        if (
            isinstance(coding, Mapping)
            and coding.get("system") == SNOMED_CT
            and coding.get("code") == MAPPA_CODE
        ):
            return []
    return [Problem("Flag.code", f"code must carry SNOMED CT {MAPPA_CODE} (MAPPA)")]


def check_flag(flag: object, *, now: datetime.datetime) -> list[Problem]:
    """Every reason `flag` may not be stored in the register at `now` ([] when it may)."""
    if not isinstance(flag, Mapping) or flag.get("resourceType") != "Flag":
        return [Problem("Flag", "the body must be a FHIR Flag resource")]
    structural = _structure(flag)
    if structural:
        return structural  # the profile's rules assume well-typed elements
    found = [*_modifiers(flag), *_status(flag), *_code(flag), *_subject(flag), *_author(flag)]
    found += _risk(flag)
    try:
        found += _period(flag, now)
    except ValueError:
        found.append(Problem("Flag.period", "period: not a FHIR date or dateTime"))
    return found
