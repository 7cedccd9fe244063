"""What the template records: the one mapping from answers to coded entries, and `$extract`.

`MAPPING` is plain data: a (linkId, answer) pair to the SNOMED CT entries it records, each with
its category in the recording code set. The card's one-click suggestions (`outcome_resources`) and
the SDC extract operation (`extract`) both build resources through `resources_for`, so they cannot
disagree. Answers for which no published list gave a code (coercive control, stalking, threats to
kill and others, listed in `UNCODED`) are kept in the QuestionnaireResponse only: a made-up code
would be a patient-safety defect.

Every resource produced carries the security labels in `SECURITY_LABELS` (restricted; domestic
violence sensitivity). Labels can be ignored by a receiving system, so the page also tells the user
in words to hide the consultation from online access, and a disclosure adds the coded
enhanced-review concept.

The recording code set is what ICB leads maintain, and the entries here must agree with it:
`recording_check.check_recording_set` finds where they do not, at start-up, on every reload and
in `iris-prompt codesets validate`.

Nothing here does I/O, and nothing is stored: the GP system is the record. The SDC operation
that checks a whole response and returns its Bundle is `template.extract`.
"""

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.template.answers import Answers, Problem
from iris_prompt.template.dash import DASH_ITEMS, MARAC_THRESHOLD, dash_yes_count
from iris_prompt.template.questionnaire import link_ids

__all__ = [
    "MAPPING",
    "OUTCOMES_ONE_CLICK",
    "SECURITY_LABELS",
    "UNCODED",
    "Entry",
    "Problem",
    "dash_yes_count",
    "child_safeguarding_reasons",
    "marac_reasons",
    "outcome_resources",
    "labelled_meta",
    "resources_for",
    "timestamp_of",
]

SECURITY_LABELS: tuple[dict[str, str], ...] = (
    {
        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "code": "R",
        "display": "restricted",
    },
    {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "SDV",
        "display": "sexual assault, abuse, or domestic violence information sensitivity",
    },
)

SOCIAL_HISTORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "social-history",
            "display": "Social History",
        }
    ]
}

# The element that dates each kind of entry the template writes.
_DATED_BY = {"Observation": "effectiveDateTime", "ServiceRequest": "authoredOn"}

# R4 requires ServiceRequest.subject. Entries made on the page (which never sees a patient) name
# no patient: the GP system files them in the record that is open (docs/template.md).
UNFILED_SUBJECT = {"display": "The patient whose record is open (set when filed)"}


@dataclass(frozen=True)
class Entry:
    """A coded entry: SNOMED CT concept, its term as sourced, recording code-set category, kind."""

    code: str
    display: str
    category: str
    kind: Literal["Observation", "ServiceRequest"]


# Each code, term and category must be as in the recording code set (recording_check.py).
ENQUIRY_MADE = Entry(
    "700410005", "Routine enquiry about domestic abuse", "enquiry-made", "Observation"
)
ENQUIRY_DECLINED = Entry(
    "700411009", "Routine enquiry about domestic abuse declined", "enquiry-declined", "Observation"
)
ENQUIRY_NOT_MADE = Entry(
    "887331000000105",
    "Routine enquiry about domestic abuse not made",
    "enquiry-not-made",
    "Observation",
)
VICTIM = Entry("879911000000102", "Victim of domestic abuse", "victim", "Observation")
HISTORY = Entry("429746005", "History of domestic abuse", "history", "Observation")
PHYSICAL = Entry("720684005", "Domestic physical abuse", "abuse-physical", "Observation")
SEXUAL = Entry("720595008", "Domestic sexual abuse", "abuse-sexual", "Observation")
EMOTIONAL = Entry("720025009", "Domestic emotional abuse", "abuse-emotional", "Observation")
FINANCIAL = Entry("225827005", "Victim of financial abuse", "abuse-financial", "Observation")
DASH_CHECKLIST = Entry(
    "886191000000106",
    "DASH (Domestic Abuse, Stalking and Harassment and Honour Based Violence) 2009 Risk Checklist",
    "risk-checklist",
    "Observation",
)
DASH_CLASSIFICATION = Entry(
    "886231000000102",
    "DASH (Domestic Abuse, Stalking and Harassment and Honour Based Violence) 2009 Risk Checklist"
    " - initial risk classification",
    "risk-classification",
    "Observation",
)
REFERRAL_ADVOCATE = Entry(
    "431719007", "Referral to domestic violence advocate", "referral-advocate", "ServiceRequest"
)
REFERRAL_AGENCY = Entry(
    "758599003", "Referral to domestic abuse agency", "referral-agency", "ServiceRequest"
)
REFERRAL_MARAC = Entry(
    "978091000000105",
    "Referral to MARAC (multi-agency risk assessment conference)",
    "referral-marac",
    "ServiceRequest",
)
REFERRAL_CHILD_SAFEGUARDING = Entry(
    "380491000000101",
    "Referral to child protection service",
    "referral-child-safeguarding",
    "ServiceRequest",
)
INFORMATION_GIVEN = Entry(
    "413457006", "Advice about domestic violence", "information-given", "Observation"
)
ONLINE_ACCESS_REVIEW = Entry(
    "1364731000000104",
    "Enhanced review indicated before granting access to your own health record",
    "online-access-review",
    "Observation",
)

MAPPING: Mapping[tuple[str, str], tuple[Entry, ...]] = {
    ("outcome", "disclosed"): (ENQUIRY_MADE, ONLINE_ACCESS_REVIEW),
    ("outcome", "not-disclosed"): (ENQUIRY_MADE,),
    ("outcome", "declined"): (ENQUIRY_DECLINED,),
    ("outcome", "not-safe-to-ask"): (ENQUIRY_NOT_MADE,),
    ("disclosure.when", "current"): (VICTIM,),
    ("disclosure.when", "past"): (HISTORY,),
    ("disclosure.types", "physical"): (PHYSICAL,),
    ("disclosure.types", "sexual"): (SEXUAL,),
    ("disclosure.types", "emotional"): (EMOTIONAL,),
    ("disclosure.types", "economic"): (FINANCIAL,),
    ("actions.taken", "referral-advocate"): (REFERRAL_ADVOCATE,),
    ("actions.taken", "referral-agency"): (REFERRAL_AGENCY,),
    ("actions.taken", "referral-marac"): (REFERRAL_MARAC,),
    ("actions.taken", "child-safeguarding"): (REFERRAL_CHILD_SAFEGUARDING,),
    ("actions.taken", "information-given"): (INFORMATION_GIVEN,),
}

# Answers of the coded questions that no code in the recording set represents (none was found in
# a published list): recorded in the QuestionnaireResponse only. A test keeps this list and
# MAPPING covering every option.
UNCODED: frozenset[tuple[str, str]] = frozenset(
    {
        ("disclosure.types", "coercive-control"),
        ("disclosure.types", "threats-to-kill"),
        ("disclosure.types", "isolation"),
        ("disclosure.types", "stalking"),
        ("disclosure.types", "medication"),
        ("disclosure.types", "technology"),
        ("actions.taken", "police"),
        ("actions.taken", "safety-plan"),
        ("actions.taken", "follow-up"),
    }
)

# The outcomes a card offers as one-click suggestions (a disclosure needs the template).
OUTCOMES_ONE_CLICK = ("not-disclosed", "declined", "not-safe-to-ask")


def marac_reasons(answers: Answers) -> list[str]:
    """Why a MARAC referral is indicated (empty when it is not): the SafeLives referral criteria.

    14 or more 'yes' is visible high risk; professional judgement and potential escalation also
    qualify, whatever the count.
    """
    count = dash_yes_count(answers)
    reasons = []
    if count >= MARAC_THRESHOLD:
        reasons.append(
            f"Visible high risk: {count} of {len(DASH_ITEMS)} DASH answers are yes "
            f"({MARAC_THRESHOLD} or more)"
        )
    if True in answers.get("dash.judgement", ()):
        reasons.append("Professional judgement: high risk")
    if True in answers.get("dash.escalation", ()):
        reasons.append("Potential escalation")
    return reasons


def child_safeguarding_reasons(answers: Answers) -> list[str]:
    """Why a child safeguarding referral is indicated (empty when it is not): children live in
    or regularly visit the household and are affected by the abuse (Think Family)."""
    if "yes" in answers.get("disclosure.children", ()) and "yes" in answers.get(
        "disclosure.children-affected", ()
    ):
        return ["Children under 18 live in or visit the household and are affected by the abuse"]
    return []


def resources_for(
    answers: Answers, *, subject: Mapping[str, Any], when: str
) -> list[dict[str, Any]]:
    """The labelled resources these (already checked) answers record, in questionnaire order."""
    resources = [
        _resource(entry, subject, when)
        for link_id in link_ids()
        for value in answers.get(link_id, ())
        if isinstance(value, str)
        for entry in MAPPING.get((link_id, value), ())
    ]
    return resources + _risk_resources(answers, subject, when)


def _risk_resources(
    answers: Answers, subject: Mapping[str, Any], when: str
) -> list[dict[str, Any]]:
    resources = []
    count = dash_yes_count(answers)
    reasons = marac_reasons(answers)
    asked = [answers[link_id][0] for link_id in DASH_ITEMS if answers.get(link_id)]
    if asked:
        tally = ", ".join(
            f"{asked.count(value)} {label}"
            for value, label in (("yes", "yes"), ("no", "no"), ("not-known", "not known"))
        )
        resources.append(
            _resource(
                DASH_CHECKLIST,
                subject,
                when,
                valueInteger=count,
                note=[{"text": f"{tally}; {len(asked)} of {len(DASH_ITEMS)} topics answered"}],
            )
        )
        classification = (
            "High risk: refer to MARAC. " + "; ".join(reasons)
            if reasons
            else f"Below the MARAC threshold: {count} of {len(DASH_ITEMS)} yes "
            f"(fewer than {MARAC_THRESHOLD}); professional judgement still applies"
        )
        resources.append(_resource(DASH_CLASSIFICATION, subject, when, valueString=classification))
    if reasons and "referral-marac" not in answers.get("actions.taken", ()):
        # Recommended, not yet made: a proposal for the clinician to act on.
        resources.append(
            _resource(
                REFERRAL_MARAC,
                subject,
                when,
                intent="proposal",
                reasonCode=[{"text": reason} for reason in reasons],
            )
        )
    children = child_safeguarding_reasons(answers)
    if children and "child-safeguarding" not in answers.get("actions.taken", ()):
        # As for MARAC: recommended, not yet made, for the clinician to act on.
        resources.append(
            _resource(
                REFERRAL_CHILD_SAFEGUARDING,
                subject,
                when,
                intent="proposal",
                reasonCode=[{"text": reason} for reason in children],
            )
        )
    return resources


def _resource(entry: Entry, subject: Mapping[str, Any], when: str, **fields: Any) -> dict[str, Any]:
    code = {
        "coding": [{"system": SNOMED_CT, "code": entry.code, "display": entry.display}],
        "text": entry.display,
    }
    resource: dict[str, Any] = {"resourceType": entry.kind, "meta": labelled_meta({})}
    if entry.kind == "Observation":
        resource |= {
            "status": "final",
            "category": [copy.deepcopy(SOCIAL_HISTORY)],
            "code": code,
            "subject": dict(subject),
            _DATED_BY["Observation"]: when,
        }
    else:
        resource |= {
            "status": "active",
            "intent": "order",
            "code": code,
            "subject": dict(subject),
            _DATED_BY["ServiceRequest"]: when,
        }
    resource.update(fields)
    return resource


def labelled_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `meta` with both security labels added (existing labels kept)."""
    labelled = copy.deepcopy(dict(meta))
    security = labelled.setdefault("security", [])
    for label in SECURITY_LABELS:
        if not any(
            s.get("system") == label["system"] and s.get("code") == label["code"] for s in security
        ):
            security.append(dict(label))
    return labelled


def timestamp_of(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    return when.isoformat(timespec="seconds")


def outcome_resources(outcome: str, *, subject: str | None, when: datetime) -> list[dict[str, Any]]:
    """The entries a card's one-click suggestion records for an outcome.

    `outcome` is "not-disclosed" (asked, nothing disclosed), "declined" or "not-safe-to-ask"
    (enquiry not made); `subject` a reference such as "Patient/123", or None. The result equals what
    `extract` gives for a QuestionnaireResponse with that outcome (less the response itself).

        >>> [r["code"]["coding"][0]["code"] for r in outcome_resources(
        ...     "declined", subject="Patient/1", when=datetime.fromisoformat("2026-01-05T09:30Z"))]
        ['700411009']
    """
    if outcome not in OUTCOMES_ONE_CLICK:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES_ONE_CLICK)}")
    reference = {"reference": subject} if subject else UNFILED_SUBJECT
    stamp = timestamp_of(when)
    # Every enquiry card carries these: copied from a serialised pattern, which costs a tenth
    # of building them, then given their subject and date (keys already in place keep order).
    resources: list[dict[str, Any]] = orjson.loads(_outcome_pattern(outcome))
    for resource in resources:
        resource["subject"] = dict(reference)
        resource[_DATED_BY[resource["resourceType"]]] = stamp
    return resources


@functools.cache
def _outcome_pattern(outcome: str) -> bytes:
    """An outcome's entries as `resources_for` makes them, with placeholder subject and date."""
    return orjson.dumps(resources_for({"outcome": [outcome]}, subject=UNFILED_SUBJECT, when=""))
