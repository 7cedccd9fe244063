"""The page's form to a QuestionnaireResponse: as an SDC form filler would complete it."""

from datetime import datetime

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from iris_prompt.template.api import response_from_form
from iris_prompt.template.extract import ExtractError, extract
from iris_prompt.template.questionnaire import (
    ANSWER_SYSTEM,
    QUESTIONNAIRE_URL,
    QUESTIONNAIRE_VERSION,
    iter_items,
)

ASKED_SAFELY = {"safety.alone": ["true"], "safety.safe-to-ask": ["true"]}


def answers(response: dict) -> dict[str, list]:
    return {
        item["linkId"]: [next(iter(a.values())) for a in item["answer"]]
        for item in iter_items(response["item"])
        if "answer" in item
    }


def test_a_completed_form_is_a_valid_response_to_this_template(when: datetime) -> None:
    form = {**ASKED_SAFELY, "outcome": ["declined"], "actions.taken": ["information-given"]}
    response = response_from_form(form, authored=when)
    QuestionnaireResponse.model_validate(response)
    assert response["questionnaire"] == f"{QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}"
    assert response["status"] == "completed"
    assert response["authored"] == "2026-03-02T10:15:00+00:00"
    assert "subject" not in response  # the page never knows the patient
    assert answers(response) == {
        "safety.alone": [True],
        "safety.safe-to-ask": [True],
        "outcome": [
            {"system": ANSWER_SYSTEM, "code": "declined", "display": "Patient declined to answer"}
        ],
        "actions.taken": [
            {
                "system": ANSWER_SYSTEM,
                "code": "information-given",
                "display": "Information about local domestic abuse support given",
            }
        ],
    }


def test_answers_to_sections_that_do_not_apply_are_dropped(when: datetime) -> None:
    # The clinician began a disclosure, then recorded that the patient declined.
    form = {
        **ASKED_SAFELY,
        "outcome": ["declined"],
        "disclosure.types": ["physical"],
        "dash.q01": ["yes"],
    }
    response = response_from_form(form, authored=when)
    assert set(answers(response)) == {"safety.alone", "safety.safe-to-ask", "outcome"}
    assert [item["linkId"] for item in response["item"]] == ["safety", "outcome"]


def test_screening_answers_are_dropped_when_it_was_not_safe_to_ask(when: datetime) -> None:
    form = {"safety.alone": ["false"], "safety.safe-to-ask": ["true"], "hark.afraid": ["true"]}
    response = response_from_form({**form, "outcome": ["not-safe-to-ask"]}, authored=when)
    assert set(answers(response)) == {"safety.alone", "outcome"}


def test_the_dash_count_is_computed_never_taken_from_the_form(when: datetime) -> None:
    form = {
        **ASKED_SAFELY,
        "outcome": ["disclosed"],
        "disclosure.when": ["current"],
        "dash.q01": ["yes"],
        "dash.q02": ["yes"],
        "dash.q03": ["no"],
        "dash.yes-count": ["24"],
    }
    assert answers(response_from_form(form, authored=when))["dash.yes-count"] == [2]


def test_values_that_do_not_fit_are_passed_on_for_the_checks_to_report(when: datetime) -> None:
    form = {"safety.alone": ["maybe"], "outcome": ["made-up"]}
    response = response_from_form(form, authored=when)
    with pytest.raises(ExtractError) as caught:
        extract(response)
    where = {p.expression: p.message for p in caught.value.problems}
    assert "boolean" in where["QuestionnaireResponse.item[0].item[0].answer[0].valueBoolean"]
    assert "'outcome' takes one of" in where["QuestionnaireResponse.item[1].answer[0]"]


def test_a_value_repeated_in_the_form_is_one_answer(when: datetime) -> None:
    form = {**ASKED_SAFELY, "outcome": ["declined", "declined"]}
    assert len(answers(response_from_form(form, authored=when))["outcome"]) == 1
