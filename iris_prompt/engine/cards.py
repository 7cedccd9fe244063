"""Cards: a `rules.Decision` and the deployment's wording settings -> CDS Hooks cards.

Pure: no I/O, no clock (the time comes in). The rules decide *whether* a card shows; this module
decides only what it says. What every card keeps to (docs/rules.md, "The cards"):

- the summary (under 140 characters) is discreet, because a screen can be seen by whoever sits
  beside the patient: it never says "domestic abuse" or "MAPPA", and never identifies anyone;
- the detail (markdown) names no one: household members appear by relationship (from coded
  relationships only) and age; a MAPPA card gives risk levels only, never offences;
- entries are listed by the code set's sourced term and date, never by the record's free text.

>>> from iris_prompt.engine.rules import CHILD_AGE, Decision
>>> cards = cards_for(Decision(enquiry=True, household_checked=True), CardSettings(),
...     base_url="https://iris.example", hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
...     patient_ref="Patient/1", now=datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC))
>>> [(card.indicator, card.summary) for card in cards]
[('info', 'IRIS prompt: consider a safe, private enquiry when the patient is alone')]
"""

import datetime
import uuid
from collections.abc import Callable

from cds_hooks import Action, Card, Coding, Link, Source, Suggestion
from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.engine.card_text import (
    CardSettings,
    enquiry_detail,
    known_abuse_detail,
    mappa_detail,
    unchecked_detail,
)
from iris_prompt.engine.household import HouseholdMember
from iris_prompt.engine.risk_flags import MAPPA_CODE, MappaRisk
from iris_prompt.engine.rules import CHILD_AGE, Decision
from iris_prompt.template.links import card_links, rules_link
from iris_prompt.template.recording import outcome_resources
from iris_prompt.urls import OVERRIDE_SYSTEM

__all__ = [
    "OVERRIDE_REASONS",
    "OVERRIDE_SYSTEM",
    "RULE_ANCHORS",
    "CardSettings",
    "cards_for",
    "withheld_card",
]

# Card and override-reason codes are this project's own, not clinical codes.
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("patient-not-alone", "Patient not alone"),
    ("not-appropriate-now", "Not appropriate now"),
    ("already-discussed", "Already discussed"),
)
NICE_QS116 = "https://www.nice.org.uk/guidance/qs116"
MAPPA_GUIDANCE = "https://www.gov.uk/government/publications/multi-agency-public-protection-arrangements-mappa-guidance"

SUMMARIES = {
    "enquiry": "IRIS prompt: consider a safe, private enquiry when the patient is alone",
    "known-abuse": "IRIS prompt: review current safety privately, with the patient alone",
    "mappa": "Household safeguarding information: read privately before discussing",
    "withheld": "Household safeguarding information: contact the practice safeguarding lead",
    "unchecked": "Household safeguarding check could not be done: read before deciding",
}

# The rule of docs/rules.md that decides each kind of card: its rules link points there (the
# anchors of the page iris_prompt.rules_page serves).
RULE_ANCHORS = {
    "enquiry": "rule-3",
    "known-abuse": "rule-4",
    "mappa": "rule-6",
    "unchecked": "rule-8",
    "withheld": "the-withheld-card",
}

ONE_CLICK_LABELS = {
    "not-disclosed": "Asked when alone: nothing disclosed",
    "declined": "Asked: patient declined to answer",
    "not-safe-to-ask": "Not safe to ask now: enquiry not made",
}


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
    # The withheld card's: naming MAPPA, or its code, would itself say what is withheld.
    "withheld": Source(label="IRIS prompt"),
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
    smart_launch: bool = False,
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
        links=[
            *(
                Link(**link)
                for link in card_links(base_url, hook_instance, card_id, smart_launch=smart_launch)
            ),
            Link(**rules_link(base_url, RULE_ANCHORS[kind])),
        ],
    )


def _mappa_card(
    member: HouseholdMember,
    risk: MappaRisk,
    decision: Decision,
    settings: CardSettings,
    new_id: Callable[[], str],
    *,
    base_url: str,
    hook_instance: str,
) -> Card:
    card_id = new_id()
    # An adult patient may be the known adult at risk: the card links the template to record
    # what they say (a child's enquiry is not this service's to prompt).
    adult = decision.age is not None and decision.age >= CHILD_AGE
    template = (
        card_links(base_url, hook_instance, card_id, smart_launch=settings.smart_launch)
        if adult
        else []
    )
    links = [Link(**link) for link in [*template, rules_link(base_url, RULE_ANCHORS["mappa"])]]
    return Card(
        uuid=card_id,
        summary=SUMMARIES["mappa"],
        detail=mappa_detail(member, risk, decision, settings),
        indicator="critical" if risk.critical else "warning",
        source=_SOURCES["mappa"],
        override_reasons=_override_reasons(),
        links=links,
    )


def _unchecked_card(
    decision: Decision, settings: CardSettings, new_id: Callable[[], str], base_url: str
) -> Card:
    """Rule 8: one discreet info card when the household check could not be done and nothing
    else shows, so that a failed check is never silence."""
    return Card(
        uuid=new_id(),
        summary=SUMMARIES["unchecked"],
        detail=unchecked_detail(decision, settings),
        indicator="info",
        source=_SOURCES["mappa"],
        links=[Link(**rules_link(base_url, RULE_ANCHORS["unchecked"]))],
    )


def withheld_card(
    settings: CardSettings,
    base_url: str,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Card:
    """In place of the MAPPA cards when their disclosure could not be audited (the store and
    its spool both failed): no detail of the flag, the member or the risk, nor even that it is
    a MAPPA flag (its source is the prompt's own), only that there is household safeguarding
    information and whom to ask. Critical, as a MAPPA card whose risk cannot be read is: the
    risk is unknown to the clinician."""
    return Card(
        uuid=new_id(),
        summary=SUMMARIES["withheld"],
        detail=(
            "There is safeguarding information about this patient's household that cannot be "
            f"shown here just now. Before deciding anything that depends on who the patient "
            f"lives with, contact {settings.safeguarding_lead}."
        ),
        indicator="critical",
        source=_SOURCES["withheld"],
        links=[Link(**rules_link(base_url, RULE_ANCHORS["withheld"]))],
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
        kind, detail = "enquiry", enquiry_detail(decision, settings)
    elif decision.known_abuse:
        kind, detail = "known-abuse", known_abuse_detail(decision, settings)
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
                smart_launch=settings.smart_launch,
            )
        )
    for member in decision.mappa:
        if member.mappa is not None:
            cards.append(
                _mappa_card(
                    member,
                    member.mappa,
                    decision,
                    settings,
                    new_id,
                    base_url=base_url,
                    hook_instance=hook_instance,
                )
            )
    if decision.unchecked:
        cards.append(_unchecked_card(decision, settings, new_id, base_url))
    return cards
