"""The Questionnaire: valid R4 (checked with the R4B models), complete, and self-consistent."""

import json

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from iris_prompt.template.dash import DASH_ITEMS
from iris_prompt.template.links import card_links
from iris_prompt.template.questionnaire import (
    ANSWER_SYSTEM,
    QUESTIONNAIRE_URL,
    is_enabled,
    iter_items,
    questionnaire,
)


def items_by_id() -> dict[str, dict]:
    return {item["linkId"]: item for item in iter_items(questionnaire()["item"])}


def option_codes(link_id: str) -> list[str]:
    return [o["valueCoding"]["code"] for o in items_by_id()[link_id]["answerOption"]]


def test_validates_as_fhir_r4b_without_losing_anything() -> None:
    q = questionnaire()
    parsed = Questionnaire.model_validate(q)
    assert json.loads(parsed.model_dump_json(exclude_none=True)) == q


def test_has_canonical_url_version_and_status() -> None:
    q = questionnaire()
    assert q["url"] == QUESTIONNAIRE_URL
    assert q["url"].endswith("/Questionnaire/" + q["id"])
    assert q["version"]
    # Draft until DASH topics 10-24 are checked against the current SafeLives checklist.
    assert q["status"] == "draft"


def test_link_ids_are_unique() -> None:
    link_ids = [item["linkId"] for item in iter_items(questionnaire()["item"])]
    assert len(link_ids) == len(set(link_ids))


def test_every_condition_refers_to_an_earlier_question_and_a_real_answer() -> None:
    # Earlier, so that one pass in questionnaire order settles what applies (page and server).
    seen: dict[str, dict] = {}
    for item in iter_items(questionnaire()["item"]):
        for condition in item.get("enableWhen", ()):
            target = seen[condition["question"]]
            if "answerCoding" in condition:
                assert condition["answerCoding"]["system"] == ANSWER_SYSTEM
                assert condition["answerCoding"]["code"] in option_codes(target["linkId"])
            else:
                assert target["type"] == "boolean"
        seen[item["linkId"]] = item


@pytest.mark.parametrize(
    ("link_id", "expected"),
    [
        ("outcome", ["disclosed", "not-disclosed", "declined", "not-safe-to-ask"]),
        (
            "disclosure.types",
            [
                "physical",
                "sexual",
                "emotional",
                "economic",
                "coercive-control",
                "threats-to-kill",
                "isolation",
                "stalking",
                "medication",
                "technology",
            ],
        ),
        (
            "actions.taken",
            [
                "information-given",
                "referral-advocate",
                "referral-agency",
                "referral-marac",
                "police",
                "child-safeguarding",
                "safety-plan",
                "follow-up",
            ],
        ),
    ],
)
def test_offers_the_answers_the_issue_asks_for(link_id: str, expected: list[str]) -> None:
    assert option_codes(link_id) == expected


def test_asks_about_safety_screening_relationship_and_children() -> None:
    items = items_by_id()
    for link_id in ("safety.alone", "safety.safe-to-ask", "outcome"):
        assert items[link_id].get("required") is True
    screening = ["hark.humiliated", "hark.afraid", "hark.sexual", "hark.physical"]
    assert all(items[link_id]["type"] == "boolean" for link_id in screening)
    assert items["disclosure.relationship"]["repeats"] is True
    assert "children" in items["disclosure.children"]["text"]
    assert "affected" in items["disclosure.children-affected"]["text"]


def test_dash_has_24_yes_no_not_known_topics_a_count_and_the_marac_rule() -> None:
    items = items_by_id()
    assert len(DASH_ITEMS) == 24
    for link_id in DASH_ITEMS:
        assert items[link_id]["type"] == "choice"
        assert option_codes(link_id) == ["yes", "no", "not-known"]
    count = items["dash.yes-count"]
    assert count["type"] == "integer" and count["readOnly"] is True
    rule = items["dash.marac-rule"]["text"]
    assert "14 or more" in rule and "MARAC" in rule
    assert "professional judgement" in rule and "escalating" in rule
    assert items["dash.judgement"]["type"] == items["dash.escalation"]["type"] == "boolean"


def test_sections_apply_only_when_they_should() -> None:
    items = items_by_id()
    disclosed = {"outcome": ["disclosed"]}
    assert is_enabled(items["dash"], disclosed)
    assert is_enabled(items["disclosure"], disclosed)
    assert not is_enabled(items["dash"], {"outcome": ["declined"]})
    assert not is_enabled(items["hark"], {"safety.safe-to-ask": [False]})
    # A string "true" is not a yes: only a real boolean answer opens the screening questions.
    assert not is_enabled(items["hark"], {"safety.safe-to-ask": ["true"]})
    assert is_enabled(items["hark"], {"safety.safe-to-ask": [True]})


def test_an_unsupported_condition_operator_is_refused() -> None:
    item = {"enableWhen": [{"question": "outcome", "operator": "exists", "answerBoolean": True}]}
    with pytest.raises(ValueError, match="operator"):
        is_enabled(item, {})


def test_card_links_carry_no_patient_data() -> None:
    smart, absolute = card_links("https://iris.example/nhs/", "hook-1", "card-9", smart_launch=True)
    assert smart["type"] == "smart" and absolute["type"] == "absolute"
    assert smart["url"] == "https://iris.example/nhs/template/launch"
    assert absolute["url"] == "https://iris.example/nhs/template"
    assert json.loads(smart["appContext"]) == {"hookInstance": "hook-1", "card": "card-9"}
    assert "appContext" not in absolute
    assert all(link["label"] for link in (smart, absolute))


def test_without_a_smart_client_the_card_offers_the_page_only() -> None:
    # A smart link nothing behind it can launch is greyed out by real CDS clients.
    (absolute,) = card_links("https://iris.example", "hook-1", "card-9")
    assert absolute == {
        "label": "Record the enquiry (open in a browser)",
        "url": "https://iris.example/template",
        "type": "absolute",
    }


@pytest.mark.parametrize(
    "base",
    [
        "iris.example",  # no scheme
        "https://iris.example/?patient=1",  # a query could carry patient data
        "https://iris.example/#x",
    ],
)
def test_card_links_refuse_a_base_url_that_is_not_plain(base: str) -> None:
    with pytest.raises(ValueError):
        card_links(base, "hook-1", "card-9")
