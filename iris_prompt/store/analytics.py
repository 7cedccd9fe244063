"""The figures ICB leads tune the prompt by, from the call log and feedback (no identifiers).

`report(engine, since=, until=, by=)` -> a plain dict (the CLI prints it as text, JSON or CSV;
`GET /admin/analytics` returns it as JSON):

- calls; cards per 1,000 calls by kind (enquiry, known-abuse, mappa, withheld, and unchecked:
  the household check could not be done and nothing else was shown) and by category
  (the trigger or known-abuse categories behind enquiry and known-abuse cards);
- distinct patients (pseudonymous keys), the share prompted (an enquiry or known-abuse card at
  least once), prompts per patient per year (alert burden: prompts / patients / years covered);
- feedback: accepted and overridden (rates over matched feedback), override reasons, enquiries
  recorded through a card's suggestions, and feedback on cards we never issued (unmatched).

`by` groups the figures by "category", "code", "practice" or "codeset-version"; a call counts
in every group it belongs to (a call with two categories counts in both).
"""

import datetime
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from iris_prompt.store.models import CallLog, FeedbackItem, IssuedCard
from iris_prompt.store.report_query import GROUPINGS

__all__ = ["report"]

PROMPTS = ("enquiry", "known-abuse")
KINDS = ("enquiry", "known-abuse", "mappa", "withheld", "unchecked")
DAYS_PER_YEAR = 365.25


@dataclass
class _Group:
    calls: int = 0
    cards: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    patients: set[str] = field(default_factory=set)
    prompted: set[str] = field(default_factory=set)
    prompts: int = 0
    call_uids: set[str] = field(default_factory=set)


def _per_thousand(count: int, calls: int) -> float:
    return round(1000.0 * count / calls, 1) if calls else 0.0


def _rate(count: int, total: int) -> float:
    return round(count / total, 3) if total else 0.0


def _groups_of(row: CallLog, by: str | None) -> Iterable[str]:
    if by is None:
        return ("all",)
    if by == "category":
        return row.categories or ("(none)",)
    if by == "code":
        return row.codes or ("(none)",)
    if by == "practice":
        return (row.practice or "(local)",)
    return (row.codeset_versions,)


def _aware(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def report(
    engine: Engine,
    *,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    calls = select(CallLog)
    feedback = select(FeedbackItem, IssuedCard.kind, IssuedCard.call_uid).outerjoin(
        IssuedCard, IssuedCard.card_uuid == FeedbackItem.card_uuid
    )
    if since is not None:
        calls = calls.where(CallLog.at >= since)
        feedback = feedback.where(FeedbackItem.received >= since)
    if until is not None:
        calls = calls.where(CallLog.at < until)
        feedback = feedback.where(FeedbackItem.received < until)
    groups: dict[str, _Group] = defaultdict(_Group)
    first: datetime.datetime | None = None
    last: datetime.datetime | None = None
    with Session(engine) as session:
        for row in session.scalars(calls.execution_options(yield_per=2000)):
            at = _aware(row.at)
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
            prompts = sum(1 for kind in row.cards if kind in PROMPTS)
            for name in _groups_of(row, by):
                group = groups[name]
                group.calls += 1
                group.cards.update(row.cards)
                if prompts:
                    group.categories.update(row.categories)
                    group.prompted.add(row.patient_key)
                group.patients.add(row.patient_key)
                group.prompts += prompts
                group.call_uids.add(row.call_uid)
        items = list(session.execute(feedback))
    start = since or first
    end = until or last
    years = ((end - start).total_seconds() / 86400 / DAYS_PER_YEAR) if start and end else 0.0
    # A period under a day is counted as a day: "per year" of a few minutes means nothing.
    years = max(years, 1 / DAYS_PER_YEAR)
    result: dict[str, Any] = {
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "by": by,
        "groups": {},
    }
    for name, group in sorted(groups.items()):
        in_group = [
            (item, kind)
            for item, kind, call_uid in items
            if call_uid is not None and (by is None or call_uid in group.call_uids)
        ]
        result["groups"][name] = _figures(group, in_group, years)
    unmatched = sum(1 for item, _kind, call_uid in items if call_uid is None)
    result["feedback_unmatched"] = unmatched
    if by is None and not groups:
        result["groups"]["all"] = _figures(_Group(), [], years)
    return result


def _figures(
    group: _Group, feedback: Sequence[tuple[FeedbackItem, str | None]], years: float
) -> dict[str, Any]:
    accepted = [item for item, _ in feedback if item.outcome == "accepted"]
    overridden = [item for item, _ in feedback if item.outcome == "overridden"]
    reasons = Counter(
        item.override_code or ("comment only" if item.override_comment else "none")
        for item in overridden
    )
    recorded = sum(1 for item, kind in feedback if kind == "enquiry" and item.outcome == "accepted")
    patients = len(group.patients)
    return {
        "calls": group.calls,
        "cards_per_1000_calls": {k: _per_thousand(group.cards[k], group.calls) for k in KINDS},
        "prompts_per_1000_calls_by_category": {
            c: _per_thousand(n, group.calls) for c, n in sorted(group.categories.items())
        },
        "patients": patients,
        "patients_prompted": len(group.prompted),
        "share_of_patients_prompted": _rate(len(group.prompted), patients),
        "prompts_per_patient_per_year": (
            round(group.prompts / patients / years, 2) if patients else 0.0
        ),
        "feedback": len(feedback),
        "accepted": len(accepted),
        "overridden": len(overridden),
        "acceptance_rate": _rate(len(accepted), len(feedback)),
        "override_rate": _rate(len(overridden), len(feedback)),
        "override_reasons": dict(sorted(reasons.items())),
        "enquiries_recorded_through_suggestions": recorded,
    }
