"""The template's HTTP contract, in process (the network is not the point here).

The router is mounted on a small FastAPI app of its own here; the service's app mounts the same
router (`template_router`).
"""

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire

from cds_hooks.http import install_error_handlers
from iris_prompt.template import api as template_api
from iris_prompt.template.api import template_router
from iris_prompt.template.form import response_from_form
from iris_prompt.template.questionnaire import QUESTIONNAIRE_URL, QUESTIONNAIRE_VERSION
from tests.support.inprocess import SyncClient, in_process

PUBLIC_BASE = "https://iris.example/gp"
EXTRACT = "/fhir/QuestionnaireResponse/$extract"
DISCLOSURE = {
    "safety.alone": ["true"],
    "safety.safe-to-ask": ["true"],
    "outcome": ["disclosed"],
    "disclosure.when": ["current"],
    **{f"dash.q{n:02d}": ["yes"] for n in range(1, 15)},
}


@pytest.fixture(scope="module")
def client() -> Iterator[SyncClient]:
    """The router on a small app of its own, with the protocol's error handlers, in process."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(template_router(public_base_url=PUBLIC_BASE))
    with in_process(app) as http:
        yield http


def a_response(form: dict[str, list[str]] = DISCLOSURE) -> dict[str, Any]:
    response = response_from_form(form, authored=datetime(2026, 3, 2, 10, 15, tzinfo=UTC))
    response["subject"] = {"reference": "Patient/abc"}
    return response


def test_search_lists_the_questionnaire_in_a_searchset(client: SyncClient) -> None:
    reply = client.get("/fhir/Questionnaire")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/fhir+json"
    bundle = reply.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    (entry,) = bundle["entry"]
    assert entry["fullUrl"] == f"{PUBLIC_BASE}/fhir/Questionnaire/domestic-abuse-enquiry"
    assert entry["resource"]["url"] == QUESTIONNAIRE_URL
    Questionnaire.model_validate(entry["resource"])


def test_a_search_with_no_match_has_no_empty_entry_array(client: SyncClient) -> None:
    bundle = client.get("/fhir/Questionnaire", params={"url": "x"}).json()
    assert bundle["total"] == 0 and "entry" not in bundle  # FHIR JSON forbids empty arrays
    Bundle.model_validate(bundle)


@pytest.mark.parametrize(
    ("query", "total"),
    [
        ({"url": QUESTIONNAIRE_URL}, 1),
        ({"url": f"{QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}"}, 1),
        ({"url": f"{QUESTIONNAIRE_URL}|0.0.1"}, 0),
        ({"url": "https://elsewhere.example/Questionnaire/phq9"}, 0),
        ({"_id": "domestic-abuse-enquiry"}, 1),
        ({"_id": "phq9"}, 0),
    ],
)
def test_search_by_url_or_id(client: SyncClient, query: dict[str, str], total: int) -> None:
    assert client.get("/fhir/Questionnaire", params=query).json()["total"] == total


def test_read_by_id(client: SyncClient) -> None:
    reply = client.get("/fhir/Questionnaire/domestic-abuse-enquiry")
    assert reply.status_code == 200
    assert reply.json()["version"] == QUESTIONNAIRE_VERSION


def test_read_of_an_unknown_id_is_404_with_an_operation_outcome(client: SyncClient) -> None:
    reply = client.get("/fhir/Questionnaire/phq9")
    assert reply.status_code == 404
    assert OperationOutcome.model_validate(reply.json()).issue[0].code == "not-found"


def test_extract_returns_a_labelled_transaction_bundle(client: SyncClient) -> None:
    reply = client.post(EXTRACT, json=a_response())
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/fhir+json"
    assert reply.headers["cache-control"] == "no-store"
    bundle = reply.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    codes = [
        e["resource"].get("code", {}).get("coding", [{}])[0].get("code") for e in bundle["entry"]
    ]
    assert "978091000000105" in codes  # 14 DASH yes: MARAC referral recommended
    assert "1364731000000104" in codes  # a disclosure: enhanced review before online access
    for entry in bundle["entry"]:
        labels = {
            (s["system"].rsplit("/", 1)[1], s["code"])
            for s in entry["resource"]["meta"]["security"]
        }
        assert labels == {("v3-Confidentiality", "R"), ("v3-ActCode", "SDV")}


def test_extract_accepts_the_sdc_parameters_form(client: SyncClient) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": a_response()}],
    }
    reply = client.post(EXTRACT, json=parameters)
    assert reply.status_code == 200, reply.text
    assert reply.json()["entry"][0]["resource"]["resourceType"] == "QuestionnaireResponse"


def test_an_invalid_response_is_400_listing_every_problem(client: SyncClient) -> None:
    response = a_response()
    response["status"] = "in-progress"
    response["questionnaire"] = "https://elsewhere.example/Questionnaire/phq9"
    response["item"][0]["item"][0]["answer"] = [{"valueBoolean": "true"}]
    response["item"].append({"linkId": "shoe-size", "answer": [{"valueInteger": 7}]})
    reply = client.post(EXTRACT, json=response)
    assert reply.status_code == 400
    outcome = reply.json()
    OperationOutcome.model_validate(outcome)
    where = {issue["expression"][0]: issue for issue in outcome["issue"]}
    assert set(where) == {
        "QuestionnaireResponse.status",
        "QuestionnaireResponse.questionnaire",
        "QuestionnaireResponse.item[0].item[0].answer[0]",
        "QuestionnaireResponse.item[4]",
    }
    assert all(i["severity"] == "error" and i["diagnostics"] for i in outcome["issue"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"resourceType": "Parameters", "parameter": []}', "no 'questionnaire-response' part"),
        (b'{"resourceType": "Parameters", "parameter": 5}', "must be a list"),
        (b'{"resourceType": "Parameters", "parameter": [5]}', "no 'questionnaire-response' part"),
        (
            b'{"resourceType": "Parameters", "parameter": '
            b'[{"name": "questionnaire-response", "resource": 5}]}',
            "expected a QuestionnaireResponse resource",
        ),
        (b'{"resourceType": "Patient"}', "expected a QuestionnaireResponse resource"),
    ],
)
def test_a_body_that_is_not_a_response_is_400(
    client: SyncClient, body: bytes, message: str
) -> None:
    reply = client.post(EXTRACT, content=body, headers={"content-type": "application/fhir+json"})
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/fhir+json"
    (issue,) = OperationOutcome.model_validate(reply.json()).issue
    assert message in issue.diagnostics


def test_an_oversized_body_is_refused_with_an_operation_outcome(client: SyncClient) -> None:
    reply = client.post(EXTRACT, content=b" " * (300 * 1024))
    assert reply.status_code == 413
    assert reply.headers["content-type"] == "application/fhir+json"
    assert OperationOutcome.model_validate(reply.json()).issue[0].code == "too-costly"


@pytest.mark.parametrize("levels", [100, 150])
def test_items_nested_too_deeply_are_a_400_not_a_fault(
    client: SyncClient, levels: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Nested 150 deep (a 4 KB body), validation used to recurse out: a 500 logging hundreds
    of stack frames per request. The nesting is refused before anything walks it."""
    item: dict[str, Any] = {"linkId": "safety.alone", "answer": [{"valueBoolean": True}]}
    for _ in range(levels):
        item = {"linkId": "safety", "item": [item]}
    response = a_response() | {"item": [item]}
    with caplog.at_level(logging.INFO, logger="cds_hooks.http"):
        reply = client.post(EXTRACT, content=json.dumps(response))
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/fhir+json"
    (issue,) = OperationOutcome.model_validate(reply.json()).issue
    assert issue.code == "structure"
    assert "nested too deeply" in (issue.diagnostics or "")
    assert "Traceback" not in caplog.text and len(caplog.text.splitlines()) <= 2


def test_a_bug_is_a_500_operation_outcome_without_trace_or_request_values(
    client: SyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(response: Any) -> dict[str, Any]:
        raise KeyError(response["subject"])  # a bug whose message carries request values

    monkeypatch.setattr(template_api, "extract", broken)
    with caplog.at_level(logging.ERROR, logger="cds_hooks.http"):
        reply = client.post(EXTRACT, json=a_response())
    assert reply.status_code == 500
    assert reply.headers["content-type"] == "application/fhir+json"
    (issue,) = OperationOutcome.model_validate(reply.json()).issue
    assert issue.code == "exception"
    assert "Patient/abc" not in reply.text and "Patient/abc" not in caplog.text
    assert "Traceback" not in reply.text and "broken" not in reply.text
    assert "KeyError" in caplog.text and "broken" in caplog.text  # located for a developer


def test_an_unknown_link_id_is_located_not_echoed(client: SyncClient) -> None:
    response = a_response()
    response["item"].append({"linkId": "Jane Doe 9434765919"})
    reply = client.post(EXTRACT, json=response)
    assert reply.status_code == 400
    assert "Jane Doe" not in reply.text
    assert reply.json()["issue"][0]["expression"] == ["QuestionnaireResponse.item[4]"]


class Inputs(HTMLParser):
    """Collects inputs, labels and every URL a page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.urls: list[str] = []
        self.forms: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input":
            self.inputs.append(found)
        elif tag == "label" and found.get("for"):
            self.label_for.add(found["for"] or "")
        elif tag == "form":
            self.forms.append(found)
        for name in ("src", "href", "action"):
            if found.get(name) is not None:
                self.urls.append(found[name] or "")


def parse(html: str) -> Inputs:
    parser = Inputs()
    parser.feed(html)
    return parser


def test_the_page_is_self_contained_labelled_and_posts(client: SyncClient) -> None:
    reply = client.get("/template")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    csp = reply.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp  # runs at the top of its window, never framed
    page = parse(reply.text)
    assert len(page.inputs) > 24 * 3
    assert {i["id"] for i in page.inputs} <= page.label_for
    # Relative URLs only: nothing from another origin, and no patient data in any of them.
    assert page.urls and all(not url.startswith(("http:", "https:", "//")) for url in page.urls)
    assert page.forms == [
        {"id": "enquiry", "method": "post", "action": "template", "novalidate": None}
    ]
    for url in {u for u in page.urls if u.startswith("template/static/")}:
        assert client.get("/" + url).status_code == 200


def test_static_files_have_their_types_and_nothing_else_is_served(client: SyncClient) -> None:
    assert (
        client.get("/template/static/template.css").headers["content-type"].startswith("text/css")
    )
    assert "javascript" in client.get("/template/static/template.js").headers["content-type"]
    assert client.get("/template/static/secrets.txt").status_code == 404


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_answers_too_long_to_send_get_a_page_saying_so(client: SyncClient, declared: bool) -> None:
    """A browser showed the server's plain-text 'Content Too Large'; the page now says nothing
    was kept and that going back keeps what was typed."""
    body = b"comments=" + b"x" * template_api.MAX_BODY_BYTES

    async def chunks() -> Any:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    form = {"content-type": "application/x-www-form-urlencoded"}
    reply = client.post("/template", content=body if declared else chunks(), headers=form)
    assert reply.status_code == 413
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["cache-control"] == "no-store"
    assert "too long to send, and nothing was kept. Go back" in reply.text


def form_post(client: SyncClient, form: dict[str, list[str]]) -> httpx.Response:
    return client.post("/template", data=form)


def test_submitting_the_page_shows_the_entries_and_the_online_visibility_instruction(
    client: SyncClient,
) -> None:
    reply = form_post(client, DISCLOSURE)
    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "no-store"
    assert "Online Visibility" in reply.text and "Do not show in the online record" in reply.text
    assert "MARAC referral recommended" in reply.text
    assert "978091000000105" in reply.text


@pytest.mark.parametrize("safe_now", [None, "true", "false"])
def test_not_safe_to_go_home_shows_what_to_do_now_first(
    client: SyncClient, safe_now: str | None
) -> None:
    form = DISCLOSURE | ({"hark.safe-now": [safe_now]} if safe_now else {})
    reply = form_post(client, form)
    assert reply.status_code == 200
    page = reply.text
    shown = 'id="immediate-safety"' in page
    assert shown == (safe_now == "false")
    if shown:
        urgent = page[page.index('id="immediate-safety"') : page.index("</section>")]
        assert "does not feel safe to go home today" in urgent
        assert "call 999 now" in urgent and "safety plan" in urgent
        assert "IDVA" in urgent and "for the same day" in urgent
        assert page.index('id="immediate-safety"') < page.index('id="hide-online"')


def test_a_page_with_problems_comes_back_with_them_and_keeps_the_answers(
    client: SyncClient,
) -> None:
    reply = form_post(
        client, {"safety.alone": ["false"], "outcome": ["declined"], "dash.q03": ["yes"]}
    )
    assert reply.status_code == 400
    assert "the outcome must be &#39;not-safe-to-ask&#39;" in reply.text
    checked = {i["id"] for i in parse(reply.text).inputs if "checked" in i}
    assert checked == {"q-safety-alone-false", "q-outcome-declined", "q-dash-q03-yes"}
