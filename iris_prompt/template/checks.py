"""Checking a QuestionnaireResponse against the recording template, listing every problem.

`check_response` runs three passes and reports everything it finds, so a caller can fix a response
in one go (the extract operation returns the list as a 400 OperationOutcome):

1. FHIR R4 structure, with `fhir.resources.R4B`;
2. each answer against its item: known linkId in its place, the item's type (a JSON `true`, not
   the string "true"), an offered answer option, one answer unless the item repeats;
3. the form's logic: required items that are enabled, no answers to items that are not, the DASH
   count matching the answers, and the clinical consistency rules below.

Locations are FHIRPath expressions: `QuestionnaireResponse.item[0].item[1].answer[0]` for what is
there, `QuestionnaireResponse.repeat(item).where(linkId='outcome')` for what is missing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from iris_prompt.template.answers import Answers, Problem
from iris_prompt.template.dash import DASH_COUNT_ITEM, dash_yes_count
from iris_prompt.template.questionnaire import (
    ANSWER_SYSTEM,
    QUESTIONNAIRE_URL,
    QUESTIONNAIRE_VERSION,
    is_enabled,
    questionnaire,
)

__all__ = ["Answers", "Problem", "check_response"]

ROOT = "QuestionnaireResponse"
SCREENING_ITEMS = ("hark.humiliated", "hark.afraid", "hark.sexual", "hark.physical")
FINAL_STATUSES = ("completed", "amended")
UNJUDGED = "depends on an answer with a problem"


@dataclass
class _Check:
    problems: list[Problem]
    schema_paths: list[str]
    answers: dict[str, list[object]] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    # Questions with a reported problem in their answers: what depends on them is not judged,
    # so that one mistake is reported once, not again as a cascade of others.
    unjudged: set[str] = field(default_factory=set)

    def add(self, expression: str, message: str, code: str = "invalid") -> None:
        self.problems.append(Problem(expression, message, code))


def check_response(response: Any) -> tuple[list[Problem], dict[str, list[object]]]:
    """Every problem in `response` (empty when it can be extracted), and its answers by linkId."""
    if not isinstance(response, dict) or response.get("resourceType") != ROOT:
        return [Problem(ROOT, "expected a QuestionnaireResponse resource", "structure")], {}
    problems = _schema_problems(response)
    check = _Check(problems, [p.expression for p in problems])
    reference = response.get("questionnaire")
    if reference not in (QUESTIONNAIRE_URL, f"{QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}"):
        check.add(
            f"{ROOT}.questionnaire",
            f"must be {QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}",
            "value",
        )
    if response.get("status") not in FINAL_STATUSES:
        check.add(f"{ROOT}.status", "must be 'completed' or 'amended' to be recorded", "value")
    items = questionnaire()["item"]
    _walk(items, response.get("item"), ROOT, check)
    _check_enabled(items, None, check)
    _check_rules(check)
    return check.problems, check.answers


def _schema_problems(response: dict[str, Any]) -> list[Problem]:
    try:
        QuestionnaireResponse.model_validate(response)
    except pydantic.ValidationError as error:
        return [
            Problem(ROOT + _path(e["loc"]), f"not valid FHIR R4: {e['msg']}", "structure")
            for e in error.errors()
        ]
    return []


def _path(loc: Sequence[int | str]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _walk(q_items: list[dict[str, Any]], given: object, path: str, check: _Check) -> None:
    """Pass 2: each given item against the template's items at the same place."""
    if given is None:
        return
    if not isinstance(given, list):
        check.add(f"{path}.item", "must be a list of items", "structure")
        return
    by_link_id = {item["linkId"]: item for item in q_items}
    for index, item in enumerate(given):
        here = f"{path}.item[{index}]"
        link_id = item.get("linkId") if isinstance(item, dict) else None
        expected = by_link_id.get(link_id) if isinstance(link_id, str) else None
        if not isinstance(item, dict) or expected is None:
            # The value itself is not echoed: an error names places, never what was sent.
            check.add(here, "this linkId is not an item of the template here", "structure")
            continue
        link_id = expected["linkId"]
        if link_id in check.locations:
            check.add(here, f"item {link_id!r} appears more than once", "structure")
            continue
        check.locations[link_id] = here
        kind = expected["type"]
        if kind == "display":
            check.add(here, f"{link_id!r} is display text and takes no answer", "structure")
        elif kind == "group":
            if "answer" in item:
                check.add(f"{here}.answer", f"group {link_id!r} takes no answer", "structure")
            _walk(expected["item"], item.get("item"), here, check)
        else:
            if "item" in item:
                check.add(f"{here}.item", f"{link_id!r} has no nested items", "structure")
            _answers(expected, item.get("answer"), here, check)


def _answers(expected: dict[str, Any], given: object, path: str, check: _Check) -> None:
    link_id = expected["linkId"]
    if given is None:
        return
    if not isinstance(given, list):
        check.add(f"{path}.answer", "must be a list of answers", "structure")
        return
    if len(given) > 1 and not expected.get("repeats"):
        check.add(f"{path}.answer", f"{link_id!r} takes one answer, not {len(given)}", "value")
        check.unjudged.add(link_id)
    values: list[object] = []
    for index, answer in enumerate(given):
        here = f"{path}.answer[{index}]"
        if any(p.startswith(here) for p in check.schema_paths):
            check.unjudged.add(link_id)
            continue  # already reported, more precisely, by the FHIR structure check
        value, message = _answer_value(expected, answer)
        if message:
            check.add(here, message, "value")
            check.unjudged.add(link_id)
        elif value in values:
            check.add(here, f"{link_id!r} has this answer twice", "value")
        else:
            values.append(value)
    if values:
        check.answers[link_id] = values


def _answer_value(expected: dict[str, Any], answer: object) -> tuple[object, str]:
    """The answer's value, or an explanation of why it does not fit the item."""
    kind = expected["type"]
    value_keys = [k for k in answer if k.startswith("value")] if isinstance(answer, dict) else []
    wanted = {"boolean": "valueBoolean", "choice": "valueCoding", "integer": "valueInteger"}[kind]
    if not isinstance(answer, dict) or value_keys != [wanted]:
        return None, f"{expected['linkId']!r} takes one {wanted}"
    value = answer[wanted]
    if kind == "boolean":
        return (
            (value, "") if isinstance(value, bool) else (None, "valueBoolean must be true or false")
        )
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (value, "") if ok else (None, "valueInteger must be a whole number")
    offered = [o["valueCoding"]["code"] for o in expected["answerOption"]]
    code = value.get("code") if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("system") != ANSWER_SYSTEM or code not in offered:
        return (
            None,
            f"{expected['linkId']!r} takes one of {', '.join(offered)} from {ANSWER_SYSTEM}",
        )
    return code, ""


def _check_enabled(items: list[dict[str, Any]], off_because: str | None, check: _Check) -> None:
    """Pass 3a: required items answered when enabled; no answers where not enabled.

    `off_because` says why the enclosing group does not apply (None when it does).
    """
    for item in items:
        link_id = item["linkId"]
        because = off_because
        if because is None and any(
            c["question"] in check.unjudged for c in item.get("enableWhen", ())
        ):
            because = UNJUDGED
        elif because is None and not is_enabled(item, check.answers):
            because = _conditions(item)
        if item["type"] == "group":
            _check_enabled(item["item"], because, check)
            continue
        if because == UNJUDGED or link_id in check.unjudged:
            check.unjudged.add(link_id)
            check.answers.pop(link_id, None)
        elif because is not None and link_id in check.answers:
            # Dropped so that whatever depends on it is judged without it.
            del check.answers[link_id]
            check.add(
                check.locations[link_id],
                f"{link_id!r} is answered but does not apply ({because})",
                "business-rule",
            )
        elif because is None and item.get("required") and link_id not in check.answers:
            check.add(_missing(link_id), f"{link_id!r} is required: {item['text']}", "required")


def _conditions(item: Mapping[str, Any]) -> str:
    parts = []
    for condition in item.get("enableWhen", ()):
        if "answerBoolean" in condition:
            wanted = "yes" if condition["answerBoolean"] else "no"
        else:
            wanted = condition["answerCoding"]["code"]
        parts.append(f"only when {condition['question']!r} is {wanted!r}")
    return "; ".join(parts)


def _missing(link_id: str) -> str:
    return f"{ROOT}.repeat(item).where(linkId='{link_id}')"


def _check_rules(check: _Check) -> None:
    """Pass 3b: the DASH count, and consistency a clinician would expect the form to enforce."""
    answers = check.answers
    given_count = answers.get(DASH_COUNT_ITEM)
    if given_count and given_count[0] != dash_yes_count(answers):
        check.add(
            check.locations[DASH_COUNT_ITEM],
            f"the DASH count is {given_count[0]} but {dash_yes_count(answers)} topics are 'yes'",
            "business-rule",
        )
    outcome = answers.get("outcome", [None])[0]
    not_safe = False in answers.get("safety.alone", ()) or False in answers.get(
        "safety.safe-to-ask", ()
    )
    if not_safe and outcome not in (None, "not-safe-to-ask"):
        check.add(
            check.locations["outcome"],
            "the patient was not alone or it was not safe to ask: the outcome must be "
            "'not-safe-to-ask'",
            "business-rule",
        )
    screened_yes = [link_id for link_id in SCREENING_ITEMS if True in answers.get(link_id, ())]
    if screened_yes and outcome not in (None, "disclosed"):
        check.add(
            check.locations["outcome"],
            f"a 'yes' to {', '.join(screened_yes)} is a disclosure: "
            "the outcome must be 'disclosed'",
            "business-rule",
        )
