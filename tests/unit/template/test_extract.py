"""$extract: the Bundle it gives, the MARAC rule, the labels on every entry, and every problem."""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from iris_prompt.template.extract import ExtractError, extract
from tests.unit.template.conftest import DISCLOSURE

Build = Callable[..., dict[str, Any]]

CONFIDENTIALITY_R = ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")
SENSITIVITY_SDV = ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "SDV")
MARAC = "978091000000105"
ONLINE_ACCESS_REVIEW = "1364731000000104"

ASKED_SAFELY = {"safety.alone": ["true"], "safety.safe-to-ask": ["true"]}


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def codes(bundle: dict[str, Any]) -> list[str]:
    return [r["code"]["coding"][0]["code"] for r in resources(bundle)[1:]]


def marac_requests(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in resources(bundle)[1:] if r["code"]["coding"][0]["code"] == MARAC]


def test_bundle_is_a_valid_transaction_of_the_response_and_its_entries(
    build: Build, when: datetime
) -> None:
    bundle = extract(build(subject="Patient/abc"), when=when)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    first, *entries = resources(bundle)
    assert first["resourceType"] == "QuestionnaireResponse"
    # Enquiry made, enhanced review (a disclosure), victim of domestic abuse, physical abuse.
    assert codes(bundle) == ["700410005", ONLINE_ACCESS_REVIEW, "879911000000102", "720684005"]
    for entry, resource in zip(bundle["entry"], resources(bundle), strict=True):
        assert entry["request"] == {"method": "POST", "url": resource["resourceType"]}
        assert entry["fullUrl"].startswith("urn:uuid:")
    for resource in entries:
        assert resource["subject"] == {"reference": "Patient/abc"}
        assert resource["effectiveDateTime"] == "2026-03-02T10:15:00+00:00"
    assert len({entry["fullUrl"] for entry in bundle["entry"]}) == len(bundle["entry"])


def test_entries_are_dated_when_the_response_was_authored_unless_told(build: Build) -> None:
    response = build()
    response["authored"] = "2026-02-01T08:00:00Z"
    bundle = extract(response)
    assert {r["effectiveDateTime"] for r in resources(bundle)[1:]} == {"2026-02-01T08:00:00Z"}


def test_without_a_subject_entries_are_for_the_open_record_and_still_valid(build: Build) -> None:
    form = {**ASKED_SAFELY, "outcome": ["declined"], "actions.taken": ["referral-advocate"]}
    bundle = extract(build(form))
    Bundle.model_validate(bundle)  # R4 requires ServiceRequest.subject
    subjects = {json.dumps(r["subject"]) for r in resources(bundle)[1:]}
    assert len(subjects) == 1 and "reference" not in subjects.pop()


@pytest.mark.parametrize("yes", [0, 13])
def test_dash_below_14_yes_recommends_no_marac_referral(build: Build, yes: int) -> None:
    bundle = extract(build(dash_yes=yes))
    assert marac_requests(bundle) == []
    checklist, classification = resources(bundle)[-2:]
    assert checklist["valueInteger"] == yes
    assert classification["valueString"].startswith("Below the MARAC threshold")


@pytest.mark.parametrize("yes", [14, 24])
def test_dash_14_or_more_yes_recommends_a_coded_marac_referral(build: Build, yes: int) -> None:
    bundle = extract(build(dash_yes=yes))
    (request,) = marac_requests(bundle)
    assert request["resourceType"] == "ServiceRequest"
    assert request["intent"] == "proposal"
    assert f"{yes} of 24" in request["reasonCode"][0]["text"]
    assert resources(bundle)[-3]["valueInteger"] == yes
    assert resources(bundle)[-2]["valueString"].startswith("High risk: refer to MARAC")


@pytest.mark.parametrize("reason", ["judgement", "escalation"])
def test_professional_judgement_or_escalation_also_recommend_marac(
    build: Build, reason: str
) -> None:
    bundle = extract(build(dash_yes=3, **{f"dash_{reason}": ["true"]}))
    (request,) = marac_requests(bundle)
    assert request["intent"] == "proposal"


def test_a_marac_referral_made_is_recorded_as_made_not_recommended(build: Build) -> None:
    bundle = extract(build(dash_yes=20, actions_taken=["referral-marac", "referral-advocate"]))
    (request,) = marac_requests(bundle)
    assert request["intent"] == "order"
    assert "431719007" in codes(bundle)


CHILD_SAFEGUARDING = "380491000000101"


def child_referrals(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r for r in resources(bundle)[1:] if r["code"]["coding"][0]["code"] == CHILD_SAFEGUARDING
    ]


@pytest.mark.parametrize(
    ("children", "affected", "taken", "intent"),
    [
        ("yes", "yes", [], "proposal"),  # proposed, as MARAC is at 14 DASH "yes"
        ("yes", "yes", ["child-safeguarding"], "order"),  # ticked: recorded as made, no proposal
        ("yes", "no", [], None),
        ("yes", "not-known", [], None),
        ("no", None, [], None),
        ("not-known", None, [], None),
    ],
)
def test_children_in_the_household_and_affected_propose_a_child_safeguarding_referral(
    build: Build, children: str, affected: str | None, taken: list[str], intent: str | None
) -> None:
    """Issue 11 point 7: Think Family in the template."""
    form = {**DISCLOSURE, "disclosure.children": [children]}
    if affected is not None:
        form["disclosure.children-affected"] = [affected]
    if taken:
        form["actions.taken"] = taken
    bundle = extract(build(form))
    Bundle.model_validate(bundle)
    requests = child_referrals(bundle)
    assert [r["intent"] for r in requests] == ([intent] if intent else [])
    if intent == "proposal":
        (request,) = requests
        assert request["resourceType"] == "ServiceRequest"
        assert "affected" in request["reasonCode"][0]["text"]
        assert {(s["system"], s["code"]) for s in request["meta"]["security"]} >= {
            CONFIDENTIALITY_R,
            SENSITIVITY_SDV,
        }


def test_a_count_sent_with_the_answers_must_match_them(build: Build) -> None:
    response = build(dash_yes=14)
    count = next(i for i in response["item"][-1]["item"] if i["linkId"] == "dash.yes-count")
    count["answer"] = [{"valueInteger": 13}]
    with pytest.raises(ExtractError) as caught:
        extract(response)
    assert "the DASH count is 13 but 14" in caught.value.problems[0].message


FORMS = {
    "disclosure with DASH, referrals and uncoded answers": dict(
        dash_yes=16,
        disclosure_types=["physical", "sexual", "emotional", "economic", "stalking"],
        actions_taken=[
            "referral-advocate",
            "referral-agency",
            "police",
            "child-safeguarding",
            "information-given",
        ],
    ),
    "past abuse": dict(disclosure_when=["past"]),
    "nothing disclosed": dict(fields={**ASKED_SAFELY, "outcome": ["not-disclosed"]}),
    "declined": dict(fields={**ASKED_SAFELY, "outcome": ["declined"]}),
    "not safe": dict(fields={"safety.alone": ["false"], "outcome": ["not-safe-to-ask"]}),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
@pytest.mark.parametrize("labelled", [False, True], ids=["plain", "already-labelled"])
def test_every_resource_in_every_bundle_carries_both_security_labels(
    build: Build, form: dict[str, Any], labelled: bool
) -> None:
    response = build(**form)
    if labelled:
        response["meta"] = {"security": [{"system": CONFIDENTIALITY_R[0], "code": "R"}]}
    bundle = extract(response)
    Bundle.model_validate(bundle)
    for resource in [bundle, *resources(bundle)]:
        labels = [(s["system"], s["code"]) for s in resource["meta"]["security"]]
        assert sorted(labels) == sorted([CONFIDENTIALITY_R, SENSITIVITY_SDV]), resource
    assert (ONLINE_ACCESS_REVIEW in codes(bundle)) == ("fields" not in form)


def test_extract_leaves_the_given_response_untouched(build: Build) -> None:
    response = build()
    before = json.dumps(response, sort_keys=True)
    extract(response)
    assert json.dumps(response, sort_keys=True) == before


def coding(code: str) -> dict[str, Any]:
    system = "https://iris-prompt.invalid/fhir/CodeSystem/enquiry-answer"
    return {"valueCoding": {"system": system, "code": code}}


def test_an_invalid_response_lists_every_problem() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://elsewhere.example/Questionnaire/other",
        "status": "in-progress",
        "item": [
            {
                "linkId": "safety",
                "item": [{"linkId": "safety.alone", "answer": [{"valueBoolean": "yes"}]}],
            },
            {"linkId": "outcome", "answer": [coding("disclosed"), coding("declined")]},
            {
                "linkId": "disclosure",
                "item": [{"linkId": "disclosure.types", "answer": [coding("gaslighting")]}],
            },
            {
                "linkId": "dash",
                "item": [{"linkId": "dash.q01", "answer": [{"valueString": "yes"}]}],
            },
            {"linkId": "favourite-colour", "answer": [{"valueString": "blue"}]},
            {"answer": [{"valueBoolean": True}]},
        ],
    }
    with pytest.raises(ExtractError) as caught:
        extract(response)
    found = {(p.expression, p.code) for p in caught.value.problems}
    assert found == {
        ("QuestionnaireResponse.questionnaire", "value"),
        ("QuestionnaireResponse.status", "value"),
        # a string where FHIR wants a JSON boolean
        ("QuestionnaireResponse.item[0].item[0].answer[0]", "value"),
        # two answers to a single-answer question
        ("QuestionnaireResponse.item[1].answer", "value"),
        # not an offered answer
        ("QuestionnaireResponse.item[2].item[0].answer[0]", "value"),
        # the wrong type of answer
        ("QuestionnaireResponse.item[3].item[0].answer[0]", "value"),
        # not a question of this template
        ("QuestionnaireResponse.item[4]", "structure"),
        # no linkId: the FHIR structure check, then the template check
        ("QuestionnaireResponse.item[5].linkId", "structure"),
        ("QuestionnaireResponse.item[5]", "structure"),
    }
    # Reported once: no "required" for the bad answers, nor for what depends on them.
    assert all(p.message for p in caught.value.problems)


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({}, ["safety.alone", "outcome"]),
        ({"safety.alone": ["true"], "outcome": ["declined"]}, ["safety.safe-to-ask"]),
        ({**ASKED_SAFELY, "outcome": ["disclosed"]}, ["disclosure.when"]),
    ],
)
def test_required_questions_that_apply_must_be_answered(
    build: Build, fields: dict[str, Any], missing: list[str]
) -> None:
    with pytest.raises(ExtractError) as caught:
        extract(build(fields))
    assert [(p.expression, p.code) for p in caught.value.problems] == [
        (f"QuestionnaireResponse.repeat(item).where(linkId='{link_id}')", "required")
        for link_id in missing
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"safety.alone": ["false"], "outcome": ["declined"]},
            "not alone or it was not safe to ask",
        ),
        (
            {**ASKED_SAFELY, "hark.afraid": ["true"], "outcome": ["not-disclosed"]},
            "is a disclosure",
        ),
    ],
)
def test_answers_that_contradict_each_other_are_refused(
    build: Build, fields: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ExtractError) as caught:
        extract(build(fields))
    (problem,) = caught.value.problems
    assert expected in problem.message and problem.code == "business-rule"


def test_answers_to_questions_that_do_not_apply_are_refused(build: Build) -> None:
    response = build({**ASKED_SAFELY, "outcome": ["declined"]})
    response["item"].append(
        {"linkId": "dash", "item": [{"linkId": "dash.q01", "answer": [coding("yes")]}]}
    )
    with pytest.raises(ExtractError) as caught:
        extract(response)
    (problem,) = caught.value.problems
    assert problem.expression == "QuestionnaireResponse.item[2].item[0]"
    assert "does not apply" in problem.message and "'outcome' is 'disclosed'" in problem.message


@pytest.mark.parametrize("body", [None, [], "text", {"resourceType": "Patient"}])
def test_something_that_is_not_a_response_is_one_problem(body: object) -> None:
    with pytest.raises(ExtractError) as caught:
        extract(body)
    assert [p.message for p in caught.value.problems] == [
        "expected a QuestionnaireResponse resource"
    ]
