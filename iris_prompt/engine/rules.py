"""THE RULES: which cards a clinician sees for one patient. `decide(...)` is the clinical decision.

`decide` is a pure function over plain data: the patient's record (`record.read_record`), the code
sets, the household (`household.household_from`, or None when it was not looked up), the time
and the caller's user type. It returns a `Decision`, plain data saying which cards to show and
why; `cards.cards_for` turns it into CDS Hooks cards. The service and the alert-burden simulation
both call this function, so what the simulation counts is what clinicians see.

The rules are stated once, for clinicians and developers alike, in docs/rules.md ("What the
prompt does"); a change to them changes that document in the same commit. Where each of its
numbered rules lives here:

1. clinicians only: `settings.clinician_user_types`, checked by `refusal` and `decide`;
2. age and death: `settings.minimum_age`; `Decision.enquiry_withheld` says why the enquiry and
   known-abuse cards were not considered, `Decision.no_cards_reason` why no card shows at all;
3. triggers: each category's `lookback` and `min_entries` in the trigger manifest; copies (the
   same code on the same day) count and show once (`_distinct`);
4. known abuse: `KNOWN_ABUSE_FOR_PATIENT` (the categories saying this patient is harmed);
5. recently asked: `settings.suppressing_categories` within `settings.enquiry_window`, for the
   known-abuse card only within `settings.known_abuse_enquiry_window` and never while a
   `HIGH_RISK_CATEGORIES` entry is within `HIGH_RISK_WINDOW`; "not safe to ask" within
   `settings.not_made_window` is itself a reason to ask (`Decision.reopened`);
   `Decision.suppressed_by`, `Decision.last_not_made`;
6. household MAPPA: `Decision.mappa`, from the `Household` (`household.py`, `risk_flags.py`),
   whose members stand as "member", "left" or "linked" (`Decision.household_presence`);
7. Think Family: `Decision.children_ages`, `Decision.unknown_ages`, `Decision.children_linked`;
8. household not checked: `Decision.unchecked` (the info card: a patient under 18, or members
   known), `Decision.household_not_checked`.

>>> decision = decide(PatientRecord({"birthDate": "1990-01-01"}, ()), codesets=None,
...     now=datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC), household=None,
...     settings=RuleSettings(), user_type="Patient")
>>> decision.no_cards_reason, decision.cards
('patient-facing caller', ())
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from iris_prompt.codesets.model import KNOWN_ABUSE_FOR_PATIENT, CodeSet, CodeSets
from iris_prompt.engine.fhir_values import local_date, years_old
from iris_prompt.engine.household import Household, HouseholdMember
from iris_prompt.engine.record import CodedEntry, PatientRecord

if TYPE_CHECKING:  # the settings load the protocol layer, which the pure rules never do
    from iris_prompt.settings import Settings

__all__ = [
    "CHILD_AGE",
    "CLINICIAN_USER_TYPES",
    "HIGH_RISK_CATEGORIES",
    "Decision",
    "RuleSettings",
    "decide",
    "refusal",
    "rule_settings",
]

CLINICIAN_USER_TYPES = frozenset({"Practitioner", "PractitionerRole"})
CHILD_AGE = 18
# Known-abuse categories that say the patient is at high risk now: a routine enquiry never
# holds back the review-safety card while one is dated within `HIGH_RISK_WINDOW`.
HIGH_RISK_CATEGORIES = frozenset({"marac", "at-risk", "police-report"})
HIGH_RISK_WINDOW = datetime.timedelta(days=365)


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The rules' settings a deployment may change (IRIS_ENQUIRY_WINDOW_DAYS, ...)."""

    enquiry_window: datetime.timedelta = datetime.timedelta(days=365)
    # How long a routine enquiry holds back the known-abuse card (IRIS_KNOWN_ABUSE_ENQUIRY_...).
    known_abuse_enquiry_window: datetime.timedelta = datetime.timedelta(days=90)
    # How long "enquiry not made" (not safe to ask) is itself a reason to ask again.
    not_made_window: datetime.timedelta = datetime.timedelta(days=90)
    minimum_age: int = 16
    suppressing_categories: frozenset[str] = frozenset({"enquiry-made", "enquiry-declined"})
    clinician_user_types: frozenset[str] = CLINICIAN_USER_TYPES


def rule_settings(settings: "Settings") -> RuleSettings:
    """The rules' settings of a deployment, from its IRIS_ settings: the one place the service
    and the simulation both take them from, so that the simulation decides as the service does.
    """
    return RuleSettings(
        enquiry_window=datetime.timedelta(days=settings.enquiry_window_days),
        known_abuse_enquiry_window=datetime.timedelta(
            days=settings.known_abuse_enquiry_window_days
        ),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to show, and why: plain data for cards, the simulation and the audit.

    `enquiry` and `known_abuse` never both hold. `mappa` lists the household members with a
    MAPPA flag in force. `triggers` and `known_abuse_entries` are the entries that count, newest
    first. `suppressed_by` is the recent enquiry that held back a card; `last_not_made` the most
    recent "enquiry not made" within the window; `reopened` is True when it is recent enough
    (`not_made_window`) to be a reason to ask by itself. `enquiry_withheld` says why the enquiry and
    known-abuse cards were not considered (under 16, age unknown); `no_cards_reason` is set when
    rules 1-2 leave no card at all (a patient-facing caller, deceased, or under 16 or of unknown
    age with no MAPPA card).
    `household_too_large`: not checked, because the household Group has more members than a
    household has. `household_members` counts the other members found when the household was
    checked (0: none recorded, so nothing could be checked); `children_ages` are those under 18,
    `unknown_ages` the number whose age is unknown (no birth date, or their record could not be
    read); `children_linked` is True when some of them are linked to the record but not in the
    household Group. `household_presence` gives, per person checked, "member", "left" (left the
    household within 12 months) or "linked" (a RelatedPerson the Group does not list).
    `household_not_checked` names the parts of the check that could not be done
    ("household-group", "related-persons") when the rest was; `unchecked` is the info card of
    rule 8.
    """

    enquiry: bool = False
    known_abuse: bool = False
    mappa: tuple[HouseholdMember, ...] = ()
    triggers: tuple[CodedEntry, ...] = ()
    known_abuse_entries: tuple[CodedEntry, ...] = ()
    suppressed_by: CodedEntry | None = None
    last_not_made: CodedEntry | None = None
    reopened: bool = False
    children_ages: tuple[int, ...] = ()
    unknown_ages: int = 0
    children_linked: bool = False
    household_checked: bool = False
    household_too_large: bool = False
    household_members: int = 0
    household_presence: tuple[str, ...] = ()
    household_not_checked: tuple[str, ...] = ()
    unchecked: bool = False
    enquiry_withheld: str | None = None
    no_cards_reason: str | None = None
    age: int | None = None
    today: datetime.date | None = field(default=None, compare=False)

    @property
    def cards(self) -> tuple[str, ...]:
        """The kinds of card to show, in order: "enquiry" or "known-abuse", then "mappa" (one
        per flagged member), or "unchecked" alone (rule 8)."""
        kinds: list[str] = []
        if self.enquiry:
            kinds.append("enquiry")
        if self.known_abuse:
            kinds.append("known-abuse")
        kinds.extend("mappa" for _ in self.mappa)
        if self.unchecked:
            kinds.append("unchecked")
        return tuple(kinds)


def _counts(entry: CodedEntry, codeset: CodeSet, today: datetime.date) -> bool:
    """Inside its category's lookback window (and not dated after today)."""
    settings = codeset.categories.get(entry.category)
    lookback = settings.lookback if settings is not None else None
    if lookback is None:
        return entry.when is None or entry.when <= today
    if entry.when is None:
        return False
    return today - lookback <= entry.when <= today


def _enough(entries: list[CodedEntry], codeset: CodeSet) -> list[CodedEntry]:
    """The entries whose category has at least its `min_entries` (counted on different days)."""
    days: dict[str, set[datetime.date | None]] = {}
    for entry in entries:
        days.setdefault(entry.category, set()).add(entry.when)
    needed = {
        name: settings.min_entries
        for name, settings in codeset.categories.items()
        if settings.min_entries > 1
    }
    return [e for e in entries if len(days[e.category]) >= needed.get(e.category, 1)]


def _newest_first(entries: Iterable[CodedEntry]) -> tuple[CodedEntry, ...]:
    return tuple(sorted(entries, key=lambda e: e.when or datetime.date.min, reverse=True))


def _distinct(entries: Iterable[CodedEntry]) -> tuple[CodedEntry, ...]:
    """One entry per code and day, in the given order: copies of an entry (the same code on the
    same day, from a duplicated resource or a problem and its consultation) are listed once.

    >>> day = datetime.date(2026, 1, 1)
    >>> e = CodedEntry("s", "c", "Term", "trigger", "anxiety", day, "Condition")
    >>> len(_distinct([e, e]))
    1
    """
    seen: set[tuple[str, str, datetime.date | None]] = set()
    kept = []
    for entry in entries:
        key = (entry.system, entry.code, entry.when)
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return tuple(kept)


def refusal(record: PatientRecord, *, settings: RuleSettings, user_type: str) -> str | None:
    """Rules 1-2: why this call gets no cards at all (a patient-facing caller, a deceased
    patient), or None when cards may show.

    The service asks this before it looks the household up, so a patient-facing call never
    causes a household lookup. A patient under 16 or of unknown age is not refused: a MAPPA card
    can still show (`decide` withholds the enquiry).
    """
    if user_type not in settings.clinician_user_types:
        return "patient-facing caller"
    if record.deceased:
        return "deceased"
    return None


def _withheld(age: int | None, settings: RuleSettings) -> str | None:
    """Rule 2: why the enquiry and known-abuse cards are not for this patient, or None."""
    if age is None:
        return "age unknown"
    if age < settings.minimum_age:
        return f"under {settings.minimum_age}"
    return None


def _prompt(
    record: PatientRecord, codesets: CodeSets, today: datetime.date, settings: RuleSettings
) -> Decision:
    """Rules 3-5: the enquiry or known-abuse card, and why."""
    known_abuse = [
        e
        for e in record.entries
        if e.set == "known-abuse" and _counts(e, codesets.known_abuse, today)
    ]
    known = _distinct(
        _newest_first(e for e in known_abuse if e.category in KNOWN_ABUSE_FOR_PATIENT)
    )
    in_window = [
        e for e in record.entries if e.set == "trigger" and _counts(e, codesets.trigger, today)
    ]
    triggers = _distinct(
        _newest_first(
            _enough(in_window, codesets.trigger)
            + [e for e in known_abuse if e.category not in KNOWN_ABUSE_FOR_PATIENT]
        )
    )
    window_start = today - settings.enquiry_window
    recent_outcomes = _newest_first(
        e
        for e in record.entries
        if e.set == "recording" and e.when is not None and window_start <= e.when <= today
    )
    suppressing = next(
        (e for e in recent_outcomes if e.category in settings.suppressing_categories), None
    )
    not_made = next((e for e in recent_outcomes if e.category == "enquiry-not-made"), None)
    # Rule 5: "not safe to ask" recently is a reason to ask by itself.
    reopened = (
        not_made is not None
        and not_made.when is not None
        and today - not_made.when <= settings.not_made_window
    )
    reasons = [*triggers, *([not_made] if reopened and not_made is not None else [])]
    if suppressing is not None and suppressing.when is not None:
        asked = suppressing.when
        # A reason to ask must be newer than the enquiry to ask again. Abuse known on the day of
        # the enquiry or since is the enquiry's own outcome (the template records a disclosure as
        # "enquiry made" and "victim" with one timestamp): it keeps the review-safety card.
        newer = any(e.when is not None and e.when > asked for e in reasons)
        known_since = any(e.when is not None and e.when >= asked for e in known)
        # Known high risk is never silenced by a routine enquiry; other known abuse only for
        # the shorter known-abuse window.
        high_risk = any(
            e.category in HIGH_RISK_CATEGORIES
            and e.when is not None
            and today - e.when <= HIGH_RISK_WINDOW
            for e in known
        )
        lapsed = today - asked > settings.known_abuse_enquiry_window
        if newer or (known and (known_since or high_risk or lapsed)):
            suppressing = None

    suppressed_by = suppressing if known or reasons else None
    return Decision(
        enquiry=bool(reasons) and not known and suppressed_by is None,
        known_abuse=bool(known) and suppressed_by is None,
        triggers=triggers,
        known_abuse_entries=known,
        suppressed_by=suppressed_by,
        last_not_made=not_made,
        reopened=reopened,
    )


def decide(
    record: PatientRecord,
    codesets: CodeSets | None,
    *,
    now: datetime.datetime,
    household: Household | None,
    settings: RuleSettings,
    user_type: str,
) -> Decision:
    """The cards for this patient now (see the module docstring for the rules).

    `now` is the time of the call in the practice's time zone (its date is "today").
    `household` None means it was not looked up: no MAPPA cards, `household_checked` False.
    `codesets` may be None only when no enquiry can be considered (rules 1-2).
    `no_cards_reason` is set when no card shows because of rules 1-2.
    """
    today = local_date(now)
    refused = refusal(record, settings=settings, user_type=user_type)
    if refused == "patient-facing caller":
        return Decision(no_cards_reason=refused, today=today)
    age = years_old(record.born, today)
    if refused is not None:
        return Decision(no_cards_reason=refused, age=age, today=today)
    withheld = _withheld(age, settings)
    prompt = Decision()
    if withheld is None:
        if codesets is None:
            raise ValueError("codesets are needed to decide for a patient")
        prompt = _prompt(record, codesets, today, settings)
    members = household.members if household is not None else ()
    mappa = tuple(m for m in members if m.mappa is not None)
    present = [m for m in members if m.presence != "left"]
    incomplete = household is not None and (not household.checked or bool(household.not_checked))
    unchecked = (
        incomplete
        and household is not None
        and not (prompt.enquiry or prompt.known_abuse or mappa)
        and ((age is not None and age < CHILD_AGE) or household.members_known or bool(members))
    )
    return replace(
        prompt,
        mappa=mappa,
        children_ages=tuple(
            sorted(m.age for m in present if m.age is not None and m.age < CHILD_AGE)
        ),
        unknown_ages=sum(1 for m in present if m.age is None),
        children_linked=any(
            m.presence == "linked" and (m.age is None or m.age < CHILD_AGE) for m in present
        ),
        household_checked=household is not None and household.checked,
        household_too_large=household is not None and household.too_large,
        household_members=len(members),
        household_presence=tuple(m.presence for m in members),
        household_not_checked=household.not_checked if household is not None else (),
        unchecked=unchecked,
        enquiry_withheld=withheld,
        no_cards_reason=withheld if withheld is not None and not mappa and not unchecked else None,
        age=age,
        today=today,
    )
