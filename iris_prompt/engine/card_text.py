"""What a card says: the markdown detail of each kind of card, and the wording a deployment
sets (`CardSettings`). `cards.py` puts these into CDS Hooks cards.

Pure, like `cards.py`. The wording principles and what each card holds are stated in
docs/rules.md ("The cards"): the detail names no one (household members by coded relationship and
age only), gives a MAPPA flag's risk levels but never offences, and lists entries by the code
set's sourced term and date, never by the record's free text. A change to what a card says
changes that document in the same commit.
"""

import datetime
from dataclasses import dataclass

from iris_prompt.engine.household import HouseholdMember
from iris_prompt.engine.record import CodedEntry
from iris_prompt.engine.risk_flags import GROUPS, LEVELS, MappaRisk
from iris_prompt.engine.rules import CHILD_AGE, Decision

__all__ = [
    "CardSettings",
    "enquiry_detail",
    "known_abuse_detail",
    "mappa_detail",
    "unchecked_detail",
]

SHOWN_ENTRIES = 5

# The people checked, by where they stand to the patient (`HouseholdMember.presence`).
PRESENCE_WORDS = {
    "member": ("household member", "household members"),
    "left": ("person who recently left the household", "people who recently left the household"),
    "linked": ("person linked to this patient's record", "people linked to this patient's record"),
}
# The parts of the household check that may fail alone (`Household.not_checked`).
PART_WORDS = {
    "household-group": "the household group (who lives with the patient)",
    "related-persons": "the people recorded as related to the patient",
    "mappa-register": "the shared MAPPA flag register",
}


@dataclass(frozen=True, slots=True)
class CardSettings:
    """Wording a deployment sets (IRIS_CONTACT_* variables): whom the clinician contacts."""

    safeguarding_lead: str = "your practice safeguarding lead"
    mappa_contact: str = "the local MAPPA co-ordinator"
    domestic_abuse_service: str = "your IRIS advocate educator or the local IDVA service"
    helpline: str = "National Domestic Abuse Helpline: 0808 2000 247 (free, 24 hours)"
    # A SMART client is configured (IRIS_SMART_CLIENT_ID): the card offers the SMART launch.
    smart_launch: bool = False


def _day(date: datetime.date | None) -> str:
    return f"{date.day} {date:%B %Y}" if date else "undated"


# A Condition's clinicalStatus, shown beside its entry. Dates decide whether an entry counts
# (record.py says why); whether the problem is still current is for the clinician to weigh.
# "active" is what most entries are and adds nothing; codes outside FHIR's set are not shown.
_STATUS_NOTES = {
    "recurrence": "recurrence",
    "relapse": "relapse",
    "inactive": "inactive",
    "remission": "in remission",
    "resolved": "resolved",
}


def _status_note(entry: CodedEntry) -> str:
    note = _STATUS_NOTES.get(entry.clinical_status or "")
    return f" ({note})" if note else ""


def _entry_lines(entries: tuple[CodedEntry, ...]) -> list[str]:
    lines = [f"- {e.term}, {_day(e.when)}{_status_note(e)}" for e in entries[:SHOWN_ENTRIES]]
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
        where = (
            "in the household or linked to this patient's record"
            if decision.children_linked
            else "in the household"
        )
        found.append(f"{children} under 18 {where} (aged {listed})")
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


def _checked_people(presence: tuple[str, ...]) -> str:
    """ "2 household members and 1 person linked to this patient's record"."""
    parts = [
        _people(presence.count(kind), *words)
        for kind, words in PRESENCE_WORDS.items()
        if kind in presence
    ]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _household(decision: Decision, settings: CardSettings) -> list[str]:
    if decision.household_too_large:
        return [
            "",
            "**The household is too large to check**: the patient's recorded household has "
            "more members than a household has (a care home, a hostel or a practice-wide "
            "group), so household risk was not checked. Find out, with the patient alone, whom "
            f"they live with, and ask {settings.safeguarding_lead} about any household risk. "
            "No household card does not mean no household risk.",
        ]
    if not decision.household_checked:
        return [
            "",
            "**Household risk could not be checked** (the household lookup failed or took too "
            "long). No household card does not mean no household risk.",
        ]
    lines = []
    missing = [PART_WORDS.get(part, part) for part in decision.household_not_checked]
    if missing:
        lines = [
            "",
            f"**Household risk could only partly be checked**: {' and '.join(missing)} could "
            "not be looked up. No household card does not mean no household risk.",
        ]
    if not decision.household_members:
        if missing:
            return [*lines, "", "Nobody else was found to check."]
        return [
            "",
            "**No household members are recorded** for this patient (no household Group with "
            "other members, and no related person whose NHS number finds their record), so "
            "household risk could not be checked. No household card does not mean no household "
            "risk.",
        ]
    # Only the people checked are said to have no flag in force.
    presence = decision.household_presence or ("member",) * decision.household_members
    checked = _checked_people(presence)
    if not decision.mappa:
        return [*lines, "", f"{checked} checked: no MAPPA flag in force."]
    return [
        *lines,
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


def enquiry_detail(decision: Decision, settings: CardSettings) -> str:
    nice, household = _nice_and_household(decision.triggers)
    lines: list[str] = []
    if nice:
        lines += [
            "**Why now.** This record has entries that NICE lists as possible indicators of "
            "domestic abuse (quality standard QS116):",
            *nice,
        ]
    if household:
        lines += [*([""] if lines else []), *household]
    if decision.last_not_made is not None:
        open_question = (
            f"An enquiry was recorded as not made on {_day(decision.last_not_made.when)}: the "
            "question is still open."
        )
        if decision.reopened:
            open_question += (
                " Not being able to ask (someone was present) is itself a possible indicator: "
                "ask when the patient is on their own."
            )
        lines += ["", open_question] if lines else [f"**Why now.** {open_question}"]
    lines += ["", *_how_to_ask(), "", *_on_disclosure(settings)]
    lines += _children(decision) + _household(decision, settings)
    return "\n".join(lines)


def known_abuse_detail(decision: Decision, settings: CardSettings) -> str:
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
    lines += _children(decision) + _household(decision, settings)
    return "\n".join(lines)


def _who(member: HouseholdMember) -> str:
    """Who carries the flag, as the card's opening words: the Group decides co-residence."""
    if member.presence == "linked":
        who = "A person linked to this patient's record"
        return f"{who} (their {member.relationship})" if member.relationship else who
    if member.presence == "left":
        who = "A person who recently left the household"
        return f"{who} (the patient's {member.relationship})" if member.relationship else who
    if member.relationship:
        return f"Someone in this household (the patient's {member.relationship})"
    return "Someone in this household (a member of the patient's household)"


def _for_this_patient(decision: Decision, settings: CardSettings) -> list[str]:
    """A child patient: Think Family applies to them. An adult: they may be the known adult at
    risk, so the brief enquiry guidance and the helpline go on the MAPPA card too."""
    age = decision.age
    if age is None:
        return [
            "",
            "**This patient's age is unknown.** If they are a child, the risk to children "
            "applies to them: consider a child safeguarding referral.",
        ]
    if age < CHILD_AGE:
        return [
            "",
            f"**This patient is a child (aged {age}).** Think Family: the risk to children "
            "applies to this patient. Consider a child safeguarding referral, and follow your "
            "child safeguarding procedures.",
        ]
    return [
        "",
        "**The patient may be the known adult at risk.** If it is safe, ask about their own "
        "safety only when they are on their own (no partner, relative, friend or child over "
        "about two in the room), never through a relative or friend as interpreter; if it is "
        f"not safe now, do not ask. {settings.helpline}. Record what is said with the "
        "template linked on this card.",
    ]


def mappa_detail(
    member: HouseholdMember, risk: MappaRisk, decision: Decision, settings: CardSettings
) -> str:
    lines = [
        f"**{_who(member)} is subject to MAPPA**: multi-agency public protection arrangements, "
        "the statutory arrangements under which police, probation and prison services jointly "
        "manage sexual and violent offenders living in the community.",
        "",
    ]
    if member.presence == "left":
        lines[-1:] = ["", "Separation is the time of highest risk.", ""]
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
        lines.append(
            "**The flag gives no risk levels**: until you know, treat the risk as high, and ask "
            "the contact below."
        )
    lines += [
        "",
        "**Do not raise this in that person's presence**, and never with the patient and that "
        "person together. Do not tell the patient or anyone else where it comes from without "
        "advice.",
        "",
        f"**Contact** {settings.safeguarding_lead} or {settings.mappa_contact} before acting. "
        "The flag is on that person's own record.",
    ]
    lines += _for_this_patient(decision, settings)
    lines += _children(decision)
    return "\n".join(lines)


def unchecked_detail(decision: Decision, settings: CardSettings) -> str:
    """Rule 8: the household check could not be done and nothing else shows."""
    if decision.household_too_large:
        why = "the recorded household is too large to check: a care home, a hostel or a group"
    else:
        why = "the lookup failed or took too long" + (
            ", or part of it could not be done" if decision.household_checked else ""
        )
    lines = [
        "**The household safeguarding check could not be done** for this patient: who lives "
        "with them, and whether any of those people carries a risk flag, could not be looked up "
        f"({why}). No card does not mean no household risk.",
    ]
    if decision.age is not None and decision.age < CHILD_AGE:
        lines += [
            "",
            f"This patient is a child (aged {decision.age}): think about who they live with.",
        ]
    lines += [
        "",
        "Before deciding anything that depends on who the patient lives with, contact "
        f"{settings.safeguarding_lead}, or open the record again later.",
    ]
    return "\n".join(lines)
