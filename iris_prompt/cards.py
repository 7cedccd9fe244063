"""Cards: a `rules.Decision` and the deployment's wording settings -> CDS Hooks cards.

Pure: no I/O, no clock (the time comes in). The rules decide *whether* a card shows; this module
decides only what it says. What every card keeps to (README "The cards"):

- the summary (under 140 characters) is discreet, because a screen can be seen by whoever sits
  beside the patient: it never says "domestic abuse" or "MAPPA", and never identifies anyone;
- the detail (markdown) names no one: household members appear by relationship (from coded
  relationships only) and age; a MAPPA card gives risk levels only, never offences;
- entries are listed by the code set's sourced term and date, never by the record's free text.

>>> from iris_prompt.rules import Decision
>>> cards = cards_for(Decision(enquiry=True, household_checked=True), CardSettings(),
...     base_url="https://iris.example", hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
...     patient_ref="Patient/1", now=datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC))
>>> [(card.indicator, card.summary) for card in cards]
[('info', 'IRIS prompt: consider a safe, private enquiry when the patient is alone')]
"""

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cds_hooks import Action, Card, Coding, Link, Source, Suggestion
from iris_prompt.codes import SNOMED_CT
from iris_prompt.household import HouseholdMember
from iris_prompt.record import CodedEntry
from iris_prompt.recording import outcome_resources
from iris_prompt.risk_flags import GROUPS, LEVELS, MAPPA_CODE, MappaRisk
from iris_prompt.rules import Decision
from iris_prompt.template import card_links

__all__ = [
    "OVERRIDE_REASONS",
    "OVERRIDE_SYSTEM",
    "CardSettings",
    "cards_for",
]

# Card and override-reason codes are this project's own, not clinical codes.
OVERRIDE_SYSTEM = "https://iris-prompt.org/fhir/CodeSystem/override-reason"
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("patient-not-alone", "Patient not alone"),
    ("not-appropriate-now", "Not appropriate now"),
    ("already-discussed", "Already discussed"),
)
NICE_QS116 = "https://www.nice.org.uk/guidance/qs116"
MAPPA_GUIDANCE = "https://www.gov.uk/government/publications/multi-agency-public-protection-arrangements-mappa-guidance"
SHOWN_ENTRIES = 5

SUMMARIES = {
    "enquiry": "IRIS prompt: consider a safe, private enquiry when the patient is alone",
    "known-abuse": "IRIS prompt: review current safety privately, with the patient alone",
    "mappa": "Household safeguarding information: read privately before discussing",
}

ONE_CLICK_LABELS = {
    "not-disclosed": "Asked when alone: nothing disclosed",
    "declined": "Asked: patient declined to answer",
    "not-safe-to-ask": "Not safe to ask now: enquiry not made",
}


@dataclass(frozen=True, slots=True)
class CardSettings:
    """Wording a deployment sets (IRIS_CONTACT_* variables): whom the clinician contacts."""

    safeguarding_lead: str = "your practice safeguarding lead"
    mappa_contact: str = "the local MAPPA co-ordinator"
    domestic_abuse_service: str = "your IRIS advocate educator or the local IDVA service"
    helpline: str = "National Domestic Abuse Helpline: 0808 2000 247 (free, 24 hours)"


def _day(date: datetime.date | None) -> str:
    return f"{date.day} {date:%B %Y}" if date else "undated"


def _entry_lines(entries: tuple[CodedEntry, ...]) -> list[str]:
    lines = [f"- {e.term}, {_day(e.when)}" for e in entries[:SHOWN_ENTRIES]]
    if len(entries) > SHOWN_ENTRIES:
        lines.append(f"- and {len(entries) - SHOWN_ENTRIES} more")
    return lines


def _people(count: int, one: str, many: str) -> str:
    return f"1 {one}" if count == 1 else f"{count} {many}"


def _children(decision: Decision) -> list[str]:
    ages, unknown = decision.children_ages, decision.unknown_ages
    if not ages and not unknown:
        return []
    found = []
    if ages:
        listed = ", ".join(str(age) for age in ages)
        children = _people(len(ages), "child", "children")
        found.append(f"{children} under 18 in the household (aged {listed})")
    if unknown:
        found.append(f"{_people(unknown, 'household member', 'household members')} of unknown age")
    advice = []
    if ages:
        advice.append(
            "Consider a child safeguarding referral, and follow your child safeguarding procedures."
        )
    if unknown:
        advice.append(
            "Find out whether those of unknown age are children"
            + ("." if ages else "; if so, consider a child safeguarding referral.")
        )
    return ["", f"**Think Family.** {', and '.join(found)}. {' '.join(advice)}"]


def _household(decision: Decision) -> list[str]:
    if not decision.household_checked:
        return [
            "",
            "**Household risk could not be checked** (the household lookup failed or took too "
            "long). No household card does not mean no household risk.",
        ]
    if not decision.household_members:
        return [
            "",
            "**No household members are recorded** for this patient (no household Group with "
            "other members, and no related person whose NHS number finds their record), so "
            "household risk could not be checked. No household card does not mean no household "
            "risk.",
        ]
    checked = _people(decision.household_members, "household member", "household members")
    if not decision.mappa:
        return ["", f"{checked} checked: no MAPPA flag in force."]
    return [
        "",
        f"{checked} checked. A household risk flag is shown in a separate card: read it before "
        "you ask.",
    ]


def _how_to_ask() -> list[str]:
    return [
        "**How to ask.** Only when the patient is on their own: no partner, relative, friend or "
        "child over about two in the room. Never use a relative or friend to interpret; use a "
        "professional interpreter. If it is not safe now, do not ask: record that, and try "
        "again another time.",
        "",
        "Ask about the last year, and about a partner or ex-partner, in your own words, for "
        "example:",
        "- Has anyone made you feel humiliated, belittled or put down?",
        "- Are you ever frightened of your partner or ex-partner?",
        "- Has anyone forced you into sexual activity you did not want?",
        "- Has your partner or ex-partner ever physically hurt you, or threatened to?",
        "",
        'Any "yes", or a hesitation, is a reason to talk further: see "If abuse is disclosed".',
        "(These are prompts in the spirit of the HARK questions, not the validated questions "
        "themselves.)",
        "",
        "**Abuse takes many forms** (Domestic Abuse Act 2021): physical or sexual abuse; violent "
        "or threatening behaviour; controlling or coercive behaviour; economic abuse; "
        "psychological or emotional abuse. Also threats to kill, isolation from family and "
        "friends, stalking and harassment, control of medication, abuse through technology.",
    ]


def _on_disclosure(settings: CardSettings) -> list[str]:
    return [
        "**If abuse is disclosed.** Listen and believe; check immediate safety (is it safe to "
        "go home today?). Assess risk with the SafeLives DASH risk checklist: 14 or more "
        '"yes" answers, or your professional judgement, or escalation (for example three or '
        "more incidents in 12 months), means a referral to MARAC. Offer a referral to "
        f"{settings.domestic_abuse_service}. Think of any children in the household.",
        "",
        f"**Contacts.** {settings.domestic_abuse_service[0].upper()}"
        f"{settings.domestic_abuse_service[1:]}; {settings.safeguarding_lead}; "
        f"{settings.helpline}.",
        "",
        "**Recording.** Use the template (or, after a first enquiry, a suggestion on this card). "
        "Every entry is labelled restricted: hide it from the patient's online record, so "
        "nobody who sees that record can tell it was made.",
    ]


def _nice_and_household(entries: tuple[CodedEntry, ...]) -> tuple[list[str], list[str]]:
    """Entry lines for the NICE indicators (trigger set), and for the known-abuse set's
    abuse-in-household entries, which are a reason to ask but no NICE indicator."""
    nice = tuple(e for e in entries if e.set == "trigger")
    household = tuple(e for e in entries if e.set != "trigger")
    household_lines = []
    if household:
        household_lines = [
            "**Recorded in the record: domestic abuse in the household** (such entries do not "
            "say who was harmed: a reason to ask, not a disclosure):",
            *_entry_lines(household),
        ]
    return _entry_lines(nice), household_lines


def _enquiry_detail(decision: Decision, settings: CardSettings) -> str:
    nice, household = _nice_and_household(decision.triggers)
    why = "**Why now.**"
    if nice:
        why += (
            " This record has entries that NICE lists as possible indicators of domestic abuse "
            "(quality standard QS116):"
        )
    lines = [why, *nice, *([""] if nice and household else []), *household]
    if decision.last_not_made is not None:
        lines += [
            "",
            "An enquiry was recorded as not made on "
            f"{_day(decision.last_not_made.when)}: the question is still open.",
        ]
    lines += ["", *_how_to_ask(), "", *_on_disclosure(settings)]
    lines += _children(decision) + _household(decision)
    return "\n".join(lines)


def _known_abuse_detail(decision: Decision, settings: CardSettings) -> str:
    lines = [
        "**Domestic abuse is already recorded** for this patient:",
        *_entry_lines(decision.known_abuse_entries),
    ]
    nice, household = _nice_and_household(decision.triggers)
    if nice:
        lines += ["", "Recent entries that may be linked:", *nice]
    if household:
        lines += ["", *household]
    lines += [
        "",
        "**Review, with the patient alone.** Is the abuse still happening? Is it safe to go "
        "home today? Has anything changed (separation, pregnancy, escalation, child contact)?",
        '- Risk: repeat or update the SafeLives DASH risk checklist; 14 or more "yes", your '
        "professional judgement, or escalation means a referral to MARAC.",
        f"- Referrals: check what has been made and what is open ({settings.domestic_abuse_service}"
        "; MARAC).",
        "- Children: who lives in or visits the household, and are they safe?",
        "",
        *_on_disclosure(settings)[2:],
    ]
    lines += _children(decision) + _household(decision)
    return "\n".join(lines)


def _who(member: HouseholdMember) -> str:
    if member.relationship:
        return f"the patient's {member.relationship}"
    return "a member of the patient's household"


def _mappa_detail(
    member: HouseholdMember, risk: MappaRisk, decision: Decision, settings: CardSettings
) -> str:
    who = _who(member)
    lines = [
        f"**Someone in this household ({who}) is subject to MAPPA**: multi-agency public "
        "protection arrangements, the statutory arrangements under which police, probation and "
        "prison services jointly manage sexual and violent offenders living in the community.",
        "",
    ]
    if risk.levels:
        lines.append("Risk of serious harm, as shared on their flag:")
        lines += [f"- to {GROUPS[group]}: {LEVELS[level]}" for group, level in risk.levels]
    if risk.unreadable:
        some = "Some risk levels" if risk.levels else "Risk levels"
        lines += [
            "",
            f"**{some} on the flag could not be read**: contact {settings.safeguarding_lead} "
            f"or {settings.mappa_contact} before acting. Until you know, treat the risk as high.",
        ]
    elif not risk.levels:
        lines.append("The flag gives no risk levels: ask the contact below.")
    lines += [
        "",
        "**Do not raise this in that person's presence**, and never with the patient and that "
        "person together. Do not tell the patient or anyone else where it comes from without "
        "advice.",
        "",
        f"**Contact** {settings.safeguarding_lead} or {settings.mappa_contact} before acting. "
        "The flag is on that person's own record.",
    ]
    lines += _children(decision)
    return "\n".join(lines)


# The parts every card of a kind shares, built once (cards are built on every record opened).
_OVERRIDE_CODINGS = tuple(
    Coding(system=OVERRIDE_SYSTEM, code=c, display=d) for c, d in OVERRIDE_REASONS
)
_SOURCES = {
    "enquiry": Source(
        label="IRIS prompt (NICE QS116 indicators)",
        url=NICE_QS116,
        topic=Coding(
            system=SNOMED_CT, code="700410005", display="Routine enquiry about domestic abuse"
        ),
    ),
    "known-abuse": Source(
        label="IRIS prompt (NICE QS116 indicators)",
        url=NICE_QS116,
        topic=Coding(system=SNOMED_CT, code="879911000000102", display="Victim of domestic abuse"),
    ),
    "mappa": Source(
        label="Shared MAPPA risk flag",
        url=MAPPA_GUIDANCE,
        topic=Coding(
            system=SNOMED_CT,
            code=MAPPA_CODE,
            display="Subject of multi-agency public protection arrangements",
        ),
    ),
}


def _override_reasons() -> list[Coding]:
    return list(_OVERRIDE_CODINGS)


def _suggestions(
    patient_ref: str | None, now: datetime.datetime, new_id: Callable[[], str]
) -> list[Suggestion]:
    """One-click outcomes: the same labelled entries the template records for them."""
    suggestions = []
    for outcome, label in ONE_CLICK_LABELS.items():
        resources = outcome_resources(outcome, subject=patient_ref, when=now)
        actions = [
            Action(type="create", description=f"Record: {r['code']['text']}", resource=r)
            for r in resources
        ]
        suggestions.append(Suggestion(label=label, uuid=new_id(), actions=actions))
    return suggestions


def _enquiry_card(
    kind: str,
    detail: str,
    *,
    base_url: str,
    hook_instance: str,
    patient_ref: str | None,
    now: datetime.datetime,
    new_id: Callable[[], str],
) -> Card:
    card_id = new_id()
    # One-click outcomes of a first enquiry. The known-abuse card asks for a safety review, which
    # the template records; "asked: nothing disclosed" there would record a routine enquiry and
    # hold the card back for a year.
    first_enquiry = kind == "enquiry"
    return Card(
        uuid=card_id,
        summary=SUMMARIES[kind],
        detail=detail,
        indicator="info" if first_enquiry else "warning",
        source=_SOURCES[kind],
        suggestions=_suggestions(patient_ref, now, new_id) if first_enquiry else None,
        selection_behavior="at-most-one" if first_enquiry else None,
        override_reasons=_override_reasons(),
        links=[Link(**link) for link in card_links(base_url, hook_instance, card_id)],
    )


def _mappa_card(
    member: HouseholdMember,
    risk: MappaRisk,
    decision: Decision,
    settings: CardSettings,
    new_id: Callable[[], str],
) -> Card:
    return Card(
        uuid=new_id(),
        summary=SUMMARIES["mappa"],
        detail=_mappa_detail(member, risk, decision, settings),
        indicator="critical" if risk.critical else "warning",
        source=_SOURCES["mappa"],
        override_reasons=_override_reasons(),
    )


def cards_for(
    decision: Decision,
    settings: CardSettings,
    *,
    base_url: str,
    hook_instance: str,
    patient_ref: str | None,
    now: datetime.datetime,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[Card]:
    """The cards for `decision`, in `decision.cards` order.

    `base_url` is the service's public base URL (for the template links); `patient_ref`
    ("Patient/123") is the subject of the one-click entries; `now` dates them.
    """
    cards: list[Card] = []
    kind, detail = None, ""
    if decision.enquiry:
        kind, detail = "enquiry", _enquiry_detail(decision, settings)
    elif decision.known_abuse:
        kind, detail = "known-abuse", _known_abuse_detail(decision, settings)
    if kind is not None:
        cards.append(
            _enquiry_card(
                kind,
                detail,
                base_url=base_url,
                hook_instance=hook_instance,
                patient_ref=patient_ref,
                now=now,
                new_id=new_id,
            )
        )
    for member in decision.mappa:
        if member.mappa is not None:
            cards.append(_mappa_card(member, member.mappa, decision, settings, new_id))
    return cards
