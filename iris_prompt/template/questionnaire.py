"""The recording template: a FHIR R4 Questionnaire built from plain data.

The template is what the clinician completes after the prompt: is it safe to ask, four screening
questions in the spirit of HARK (our own words), the outcome, what was disclosed, the DASH risk
checklist topics with the MARAC rule (`dash.py`), and the actions taken. `questionnaire()` builds
the FHIR resource from the tuples below; the web page and the `$extract` checks read the same
resource, so the form, the server's validation and the coded output cannot drift apart.

Answer options use this project's own code system (`ANSWER_SYSTEM`): they are form answers, not
clinical codes. Clinical codes (SNOMED CT) are attached to answers in one place only:
`iris_prompt.template.recording.MAPPING`.

    >>> q = questionnaire()
    >>> q["url"], q["status"]
    ('https://iris-prompt.invalid/fhir/Questionnaire/domestic-abuse-enquiry', 'draft')
"""

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from iris_prompt.template.dash import DASH_COUNT_ITEM, DASH_ITEMS, DASH_TOPICS, MARAC_RULE
from iris_prompt.urls import ANSWER_SYSTEM, QUESTIONNAIRE_ID, QUESTIONNAIRE_URL

__all__ = [
    "ANSWER_SYSTEM",
    "QUESTIONNAIRE_ID",
    "QUESTIONNAIRE_URL",
    "QUESTIONNAIRE_VERSION",
    "is_enabled",
    "iter_items",
    "link_ids",
    "questionnaire",
]

# Canonical URLs never change once entries carry them: see iris_prompt/urls.py.
# Draft until DASH topics 10-24 are checked against the current SafeLives checklist
# (docs/template.md).
QUESTIONNAIRE_VERSION = "0.1.0"
QUESTIONNAIRE_STATUS = "draft"

# SDC: a read-only item whose value a form filler computes.
CALCULATED_EXPRESSION = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)

Options = tuple[tuple[str, str], ...]

YES_NO_NOT_KNOWN: Options = (("yes", "Yes"), ("no", "No"), ("not-known", "Not known"))

OUTCOMES: Options = (
    ("disclosed", "Abuse disclosed"),
    ("not-disclosed", "Asked: nothing disclosed"),
    ("declined", "Patient declined to answer"),
    ("not-safe-to-ask", "Not safe to ask: enquiry not made"),
)

WHEN: Options = (
    ("current", "Happening now or within the last 12 months"),
    ("past", "In the past only"),
)

# Domestic Abuse Act 2021 (section 1) dimensions, plus the forms of abuse the Child T safeguarding
# practice review (Dudley, 2019) found together in one household.
ABUSE_TYPES: Options = (
    ("physical", "Physical"),
    ("sexual", "Sexual"),
    ("emotional", "Emotional or psychological"),
    ("economic", "Economic or financial"),
    ("coercive-control", "Coercive or controlling behaviour"),
    ("threats-to-kill", "Threats to kill"),
    ("isolation", "Isolation from family or friends"),
    ("stalking", "Stalking or harassment"),
    ("medication", "Manipulation of medication"),
    ("technology", "Technology-facilitated (phones, tracking, social media, cameras)"),
)

RELATIONSHIPS: Options = (
    ("partner", "Current partner"),
    ("ex-partner", "Former partner"),
    ("parent", "Parent or step-parent"),
    ("adult-child", "Adult son or daughter"),
    ("sibling", "Brother or sister"),
    ("other-family", "Other family member"),
    ("other", "Someone else personally connected"),
)

ACTIONS: Options = (
    ("information-given", "Information about local domestic abuse support given"),
    ("referral-advocate", "Referred to the IRIS advocate educator or an IDVA"),
    ("referral-agency", "Referred to a specialist domestic abuse service"),
    ("referral-marac", "Referred to MARAC"),
    ("police", "Police informed"),
    ("child-safeguarding", "Child safeguarding referral made"),
    ("safety-plan", "Safety plan discussed"),
    ("follow-up", "Follow-up arranged"),
)


def _coding(code: str, display: str) -> dict[str, str]:
    return {"system": ANSWER_SYSTEM, "code": code, "display": display}


def _when(question: str, answer: str | bool) -> dict[str, Any]:
    """An enableWhen condition: the question has this answer (a form code or a boolean)."""
    if isinstance(answer, bool):
        return {"question": question, "operator": "=", "answerBoolean": answer}
    return {
        "question": question,
        "operator": "=",
        "answerCoding": {"system": ANSWER_SYSTEM, "code": answer},
    }


def _item(
    link_id: str,
    text: str,
    kind: str,
    *,
    required: bool = False,
    enable_when: Sequence[dict[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": link_id, "text": text, "type": kind}
    if required:
        item["required"] = True
    if enable_when:
        item["enableWhen"] = list(enable_when)
        if len(enable_when) > 1:
            item["enableBehavior"] = "all"
    item.update(extra)
    return item


def _choice(
    link_id: str,
    text: str,
    options: Options,
    *,
    repeats: bool = False,
    required: bool = False,
    enable_when: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    extra: dict[str, Any] = {"answerOption": [{"valueCoding": _coding(c, d)} for c, d in options]}
    if repeats:
        extra["repeats"] = True
    return _item(link_id, text, "choice", required=required, enable_when=enable_when, **extra)


def _group(
    link_id: str,
    text: str,
    items: list[dict[str, Any]],
    *,
    enable_when: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    return _item(link_id, text, "group", enable_when=enable_when, item=items)


def _safety() -> dict[str, Any]:
    return _group(
        "safety",
        "Before you ask",
        [
            _item(
                "safety.alone",
                "Is the patient on their own? No partner, relative, friend or child over about two "
                "in the room, and no relative or friend interpreting.",
                "boolean",
                required=True,
            ),
            _item(
                "safety.safe-to-ask",
                "Is it safe to ask about home life now?",
                "boolean",
                required=True,
                enable_when=[_when("safety.alone", True)],
            ),
        ],
    )


def _screening() -> dict[str, Any]:
    return _group(
        "hark",
        "Screening questions",
        [
            _item(
                "hark.guide",
                "Ask in your own words, about a partner or ex-partner, in the last 12 months. "
                "A 'yes' to any of these is a disclosure: record the outcome as disclosed.",
                "display",
            ),
            _item(
                "hark.humiliated",
                "Has a partner or ex-partner put you down, made you feel worthless or hurt you "
                "with words?",
                "boolean",
            ),
            _item("hark.afraid", "Have you been frightened of a partner or ex-partner?", "boolean"),
            _item(
                "hark.sexual",
                "Has a partner or ex-partner made you do anything sexual that you did not want?",
                "boolean",
            ),
            _item(
                "hark.physical",
                "Has a partner or ex-partner hit, kicked, pushed or otherwise physically hurt you?",
                "boolean",
            ),
            _item("hark.safe-now", "Do you feel safe to go home today?", "boolean"),
        ],
        enable_when=[_when("safety.safe-to-ask", True)],
    )


def _disclosure() -> dict[str, Any]:
    return _group(
        "disclosure",
        "What was disclosed",
        [
            _choice("disclosure.when", "When is or was the abuse?", WHEN, required=True),
            _choice(
                "disclosure.types", "Types of abuse (all that apply)", ABUSE_TYPES, repeats=True
            ),
            _choice(
                "disclosure.relationship",
                "Who is causing the harm (all that apply)?",
                RELATIONSHIPS,
                repeats=True,
            ),
            _choice(
                "disclosure.children",
                "Do children under 18 live in the household or visit it regularly?",
                YES_NO_NOT_KNOWN,
            ),
            _choice(
                "disclosure.children-affected",
                "Are the children affected (seeing or hearing the abuse, or being harmed)?",
                YES_NO_NOT_KNOWN,
                enable_when=[_when("disclosure.children", "yes")],
            ),
        ],
        enable_when=[_when("outcome", "disclosed")],
    )


def _dash() -> dict[str, Any]:
    count_expression = (
        "%resource.repeat(item).where(linkId.startsWith('dash.q'))"
        ".answer.value.where(code = 'yes').count()"
    )
    items = [
        _choice(link_id, f"{n}. {topic}", YES_NO_NOT_KNOWN)
        for n, (link_id, topic) in enumerate(zip(DASH_ITEMS, DASH_TOPICS, strict=True), start=1)
    ]
    items += [
        _item(
            DASH_COUNT_ITEM,
            f"Number of 'yes' answers (of {len(DASH_ITEMS)})",
            "integer",
            readOnly=True,
            extension=[
                {
                    "url": CALCULATED_EXPRESSION,
                    "valueExpression": {
                        "language": "text/fhirpath",
                        "expression": count_expression,
                    },
                }
            ],
        ),
        _item("dash.marac-rule", MARAC_RULE, "display"),
        _item(
            "dash.judgement",
            "Professional judgement: high risk whatever the count",
            "boolean",
        ),
        _item(
            "dash.escalation",
            "Potential escalation: for example three or more incidents in 12 months",
            "boolean",
        ),
    ]
    guide = _item(
        "dash.guide",
        "Go through each topic with the patient: yes, no, or not known rather than a guess.",
        "display",
    )
    return _group(
        "dash",
        "Risk: DASH risk identification checklist topics",
        [guide, *items],
        enable_when=[_when("outcome", "disclosed")],
    )


def questionnaire() -> dict[str, Any]:
    """The recording template as a FHIR R4 Questionnaire (a new dict on each call)."""
    return {
        "resourceType": "Questionnaire",
        "id": QUESTIONNAIRE_ID,
        "url": QUESTIONNAIRE_URL,
        "version": QUESTIONNAIRE_VERSION,
        "name": "IrisDomesticAbuseEnquiry",
        "title": "Domestic abuse enquiry and recording (IRIS prompt)",
        "status": QUESTIONNAIRE_STATUS,
        "subjectType": ["Patient"],
        "publisher": "iris-prompt",
        "description": (
            "Structured enquiry about domestic abuse in general practice: safety to ask, screening "
            "questions, outcome, disclosure, DASH risk checklist topics and actions. Every entry "
            "made from it must be hidden from the patient's online record."
        ),
        "item": [
            _safety(),
            _screening(),
            _choice("outcome", "Outcome of the enquiry", OUTCOMES, required=True),
            _disclosure(),
            _dash(),
            _group(
                "actions",
                "Actions",
                [_choice("actions.taken", "Actions taken (all that apply)", ACTIONS, repeats=True)],
            ),
        ],
    }


@functools.cache
def link_ids() -> tuple[str, ...]:
    """Every item's linkId in questionnaire order, built once (the card path asks per call)."""
    return tuple(item["linkId"] for item in iter_items(questionnaire()["item"]))


def iter_items(items: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every item, depth first in questionnaire order (groups before their children)."""
    for item in items:
        yield item
        yield from iter_items(item.get("item", ()))


def is_enabled(item: Mapping[str, Any], answers: Mapping[str, Sequence[object]]) -> bool:
    """Whether the item's enableWhen conditions hold for these answers.

    `answers` maps linkId to answer values: a form code (str) for choice items, a bool for boolean
    items. Only the `=` operator is used by this template. A question that is itself disabled has
    no answers, so whatever depends on it is disabled too.
    """
    conditions = item.get("enableWhen", ())
    results = [_condition_holds(c, answers) for c in conditions]
    if item.get("enableBehavior") == "any":
        return any(results)
    return all(results)


def _condition_holds(condition: Mapping[str, Any], answers: Mapping[str, Sequence[object]]) -> bool:
    if condition["operator"] != "=":
        raise ValueError(f"unsupported enableWhen operator {condition['operator']!r}")
    given = answers.get(condition["question"], ())
    if "answerBoolean" in condition:
        return condition["answerBoolean"] in given and all(isinstance(v, bool) for v in given)
    return condition["answerCoding"]["code"] in given
