"""The template page's form as plain data: a submitted form read as the QuestionnaireResponse it
describes, the page's fields (with the answers already given) drawn from the Questionnaire, and
the result page's summary of the extracted Bundle. No HTTP here (that is `template/api.py`)."""

import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from iris_prompt.template.dash import (
    DASH_COUNT_ITEM,
    DASH_ITEMS,
    MARAC_RULE,
    MARAC_THRESHOLD,
    dash_yes_count,
)
from iris_prompt.template.questionnaire import (
    QUESTIONNAIRE_URL,
    QUESTIONNAIRE_VERSION,
    is_enabled,
    iter_items,
    questionnaire,
)
from iris_prompt.template.recording import UNCODED

__all__ = ["fields_for", "response_from_form", "summary_of"]


def response_from_form(form: Mapping[str, Sequence[str]], *, authored: datetime) -> dict[str, Any]:
    """The QuestionnaireResponse a submitted page describes (names are linkIds, values codes).

    Answers to questions that do not apply (a section the page hid) are dropped, as an SDC form
    filler does; the DASH count is computed, never taken from the form. Values that do not fit an
    item are passed on unchanged, for the extract checks to report.
    """
    answers: dict[str, list[object]] = {}
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}",
        "status": "completed",
        "authored": authored.isoformat(timespec="seconds"),
        "item": _form_items(questionnaire()["item"], form, answers),
    }


def _form_items(
    items: Sequence[Mapping[str, Any]], form: Mapping[str, Sequence[str]], answers: dict[str, Any]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        link_id, kind = item["linkId"], item["type"]
        if kind == "display" or not is_enabled(item, answers):
            continue
        if kind == "group":
            children = _form_items(item["item"], form, answers)
            if children:
                out.append({"linkId": link_id, "text": item["text"], "item": children})
            continue
        if link_id == DASH_COUNT_ITEM:
            values: list[object] = (
                [dash_yes_count(answers)] if any(q in answers for q in DASH_ITEMS) else []
            )
        else:
            values = [_form_value(kind, raw) for raw in dict.fromkeys(form.get(link_id, ())) if raw]
        if values:
            answers[link_id] = values
            answer = [_answer(item, value) for value in values]
            out.append({"linkId": link_id, "text": item["text"], "answer": answer})
    return out


def _form_value(kind: str, raw: str) -> object:
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


def _answer(item: Mapping[str, Any], value: object) -> dict[str, Any]:
    if item["type"] == "boolean":
        return {"valueBoolean": value}
    if item["type"] == "integer":
        return {"valueInteger": value}
    for option in item["answerOption"]:
        if option["valueCoding"]["code"] == value:
            return {"valueCoding": dict(option["valueCoding"])}
    return {"valueCoding": {"code": value}}


def fields_for(
    items: Sequence[Mapping[str, Any]], form: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    """The page's view of the questionnaire: one dict per item, with what the form had chosen."""
    fields = []
    for item in items:
        link_id, kind = item["linkId"], item["type"]
        field: dict[str, Any] = {
            "kind": kind,
            "name": link_id,
            "id": "q-" + link_id.replace(".", "-"),
            "text": item["text"],
            "enable_when": orjson.dumps(
                [_enable_condition(c) for c in item.get("enableWhen", ())]
            ).decode(),
        }
        if kind == "group":
            field["children"] = fields_for(item["item"], form)
        elif kind == "boolean":
            field["options"] = _options(
                field["id"], (("true", "Yes"), ("false", "No")), form, link_id
            )
            field["repeats"] = False
        elif kind == "choice":
            pairs = [
                (o["valueCoding"]["code"], o["valueCoding"]["display"])
                for o in item["answerOption"]
            ]
            field["options"] = _options(field["id"], pairs, form, link_id)
            field["repeats"] = item.get("repeats", False)
        elif link_id == DASH_COUNT_ITEM:
            field.update(
                count=sum("yes" in form.get(q, ()) for q in DASH_ITEMS),
                total=len(DASH_ITEMS),
                threshold=MARAC_THRESHOLD,
                rule=MARAC_RULE,
            )
        fields.append(field)
    return fields


def _enable_condition(condition: Mapping[str, Any]) -> dict[str, str]:
    if "answerBoolean" in condition:
        value = "true" if condition["answerBoolean"] else "false"
    else:
        value = condition["answerCoding"]["code"]
    return {"question": condition["question"], "value": value}


def _options(
    field_id: str, pairs: Sequence[tuple[str, str]], form: Mapping[str, Sequence[str]], name: str
) -> list[dict[str, Any]]:
    chosen = form.get(name, ())
    return [
        {"value": value, "label": label, "id": f"{field_id}-{value}", "checked": value in chosen}
        for value, label in pairs
    ]


def summary_of(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """What the result page shows, read from the Bundle that is filed (not worked out again)."""
    resources = [entry["resource"] for entry in bundle["entry"]]
    response = resources[0]
    coded = resources[1:]
    recommendations = [
        r for r in coded if r["resourceType"] == "ServiceRequest" and r["intent"] == "proposal"
    ]
    chosen = {
        (item["linkId"], answer["valueCoding"]["code"])
        for item in iter_items(response.get("item", ()))
        for answer in item.get("answer", ())
        if "valueCoding" in answer
    }
    labels = {
        (item["linkId"], o["valueCoding"]["code"]): o["valueCoding"]["display"]
        for item in iter_items(questionnaire()["item"])
        for o in item.get("answerOption", ())
    }
    children = {
        answer["valueCoding"]["code"]
        for item in iter_items(response.get("item", ()))
        if item["linkId"] in ("disclosure.children", "disclosure.children-affected")
        for answer in item.get("answer", ())
    }
    unsafe_to_go_home = any(
        answer.get("valueBoolean") is False
        for item in iter_items(response.get("item", ()))
        if item["linkId"] == "hark.safe-now"
        for answer in item.get("answer", ())
    )
    return {
        "unsafe_to_go_home": unsafe_to_go_home,
        # Think Family: children in the household and no child safeguarding referral recorded.
        "consider_children": "yes" in children
        and ("actions.taken", "child-safeguarding") not in chosen,
        "coded": [
            {
                "kind": r["resourceType"],
                "code": r["code"]["coding"][0]["code"],
                "display": r["code"]["coding"][0]["display"],
                "status": "recommended" if r in recommendations else "recorded",
                "value": r.get("valueInteger", r.get("valueString", "")),
            }
            for r in coded
        ],
        "uncoded": [labels[pair] for pair in labels if pair in chosen and pair in UNCODED],
        "recommendations": [
            [reason["text"] for reason in r.get("reasonCode", ())] for r in recommendations
        ],
        "bundle_json": orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode(),
        "bundle_data_url": "data:application/fhir+json;charset=utf-8,"
        + urllib.parse.quote(orjson.dumps(bundle).decode()),
    }
