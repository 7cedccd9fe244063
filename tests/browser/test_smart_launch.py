"""The template as a SMART on FHIR app, end to end: the card's smart link, an EHR launch from the
SMART on FHIR project's own launcher, authorize, the patient's banner, answers, filing, and the
entries read back from the FHIR server behind the launcher. Real parts throughout: the launcher
(Node), the test FHIR server, the service under uvicorn, Debian's chromium.

The one stand-in: the launcher's access tokens live for at least a minute, so an expired token at
filing time is the FHIR server answering 401 to the transaction, as an EHR does for an expired
token (the launcher passes its answer through unchanged).
"""

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from iris_prompt.app import create_app
from iris_prompt.settings import Settings
from iris_prompt.template.filing import FILING_SYSTEM
from tests.api.engine_support import prefetch_for, record, request_body
from tests.browser.conftest import SmartEhr
from tests.support import web
from tests.support.server import serve
from tests.support.smart_launcher import ehr_launch_url, fhir_base

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PATIENT = "seed-mum"
USER = "gp1"
LABELS = {
    ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
    ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "SDV"),
}
DISCLOSURE_CODES = {"700410005", "1364731000000104", "879911000000102", "720684005"}


@pytest.fixture(scope="module")
def service(smart_ehr: SmartEhr) -> Iterator[str]:
    """The service with a public SMART client trusting the launcher; local mode (no caller JWT)."""
    settings = Settings(
        local_mode=True,
        smart_client_id="iris-prompt-test",
        smart_public_client=True,
        smart_issuers=[fhir_base(smart_ehr.launcher)],
    )
    with serve(create_app(settings), access_log=False) as base_url:
        yield base_url


@pytest.fixture
def ehr(smart_ehr: SmartEhr) -> SmartEhr:
    smart_ehr.reset()
    return smart_ehr


def smart_link(service: str) -> dict[str, Any]:
    """The smart link of the enquiry card the service gives for the seed case."""
    resources = record("seed-case")
    body = request_body(PATIENT, prefetch=prefetch_for(resources, PATIENT), fhir_server=None)
    answer = web.post(f"{service}/cds-services/iris-domestic-abuse-prompt", json=body)
    assert answer.status_code == 200
    links = [link for card in answer.json()["cards"] for link in card.get("links", ())]
    smart = [link for link in links if link["type"] == "smart"]
    assert len(smart) == 1 and any(link["type"] == "absolute" for link in links)
    return smart[0]


def launch(page: Page, ehr: SmartEhr, service: str) -> None:
    """The clinician opens the card's smart link in the EHR: launch, authorize, the form."""
    page.goto(
        ehr_launch_url(ehr.launcher, service + "/template/launch", patient=PATIENT, provider=USER)
    )
    expect(page.locator("#patient-name")).to_have_text("Rowan Fictional")


def answer_a_disclosure(page: Page) -> None:
    page.locator("#q-safety-alone").get_by_label("Yes").check()
    page.locator("#q-safety-safe-to-ask").get_by_label("Yes").check()
    page.locator("#q-hark-physical").get_by_label("Yes").check()
    page.get_by_label("Abuse disclosed").check()
    page.get_by_label("Happening now or within the last 12 months").check()
    page.get_by_label("Physical", exact=True).check()
    page.get_by_role("button", name="Show the coded entries").click()
    expect(page.locator("#coded")).to_contain_text("720684005")


def filed_resources(ehr: SmartEhr) -> list[dict[str, Any]]:
    return [
        resource
        for kind in ("QuestionnaireResponse", "Observation", "ServiceRequest")
        for resource in ehr.fhir.store.get(kind, {}).values()
        if any(i.get("system") == FILING_SYSTEM for i in _identifiers(resource))
    ]


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = resource.get("identifier") or []
    return [found] if isinstance(found, dict) else found


def forget_filed(ehr: SmartEhr) -> None:
    for resource in filed_resources(ehr):
        del ehr.fhir.store[resource["resourceType"]][resource["id"]]


def test_the_card_launches_the_template_which_files_labelled_entries_for_the_patient(
    page: Page, ehr: SmartEhr, service: str
) -> None:
    forget_filed(ehr)
    link = smart_link(service)
    assert link["url"] == service + "/template/launch"
    assert '"hookInstance"' in link["appContext"]
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(ehr_launch_url(ehr.launcher, link["url"], patient=PATIENT, provider=USER))

    expect(page.locator("#patient-name")).to_have_text("Rowan Fictional")
    expect(page.locator("#patient-birth-date")).to_have_text("1992-05-14")
    expect(page.locator("#patient-nhs-number")).to_have_text("999 000 0026")
    answer_a_disclosure(page)
    expect(page.locator("#patient-name")).to_have_text("Rowan Fictional")
    assert filed_resources(ehr) == []  # shown first, filed only when asked
    csrf = page.locator("#file input[name=csrf]").get_attribute("value")
    page.get_by_role("button", name="File in the record").click()
    expect(page.locator("h1")).to_have_text("Filed in the patient's record")

    filed = filed_resources(ehr)
    assert len(ehr.fhir.transactions) == 1
    assert page.locator("#filed li").count() == len(filed)
    codes = {c["code"] for r in filed if "code" in r for c in r["code"]["coding"]}
    assert codes == DISCLOSURE_CODES
    for resource in filed:
        assert resource["subject"] == {"reference": f"Patient/{PATIENT}"}
        assert resource["encounter"] == {"reference": "Encounter/seed-visit"}
        labels = {(c["system"], c["code"]) for c in resource["meta"]["security"]}
        assert labels == LABELS
    observations = [r for r in filed if r["resourceType"] == "Observation"]
    assert all(o["performer"] == [{"reference": f"Practitioner/{USER}"}] for o in observations)
    (response,) = [r for r in filed if r["resourceType"] == "QuestionnaireResponse"]
    assert response["author"] == {"reference": f"Practitioner/{USER}"}

    # No token, code or state in any URL the page loaded after the callback, and none in the page.
    after = seen[seen.index(next(u for u in seen if "/template/callback" in u)) + 1 :]
    assert not [u for u in after if re.search(r"[?&](code|state|access_token)=", u)]
    assert "eyJ" not in page.content()
    # The session ended with the filing: the same form sent again files nothing.
    again = page.request.post(service + "/template/file", form={"csrf": csrf})
    assert again.status == 403 and "nothing was filed by this request" in again.text()
    assert len(ehr.fhir.transactions) == 1


def test_a_wrong_state_is_refused_and_a_replayed_code_finds_it_spent(
    page: Page, ehr: SmartEhr, service: str
) -> None:
    callbacks: list[str] = []
    page.on(
        "request",
        lambda r: callbacks.append(r.url) if "/template/callback" in r.url else None,
    )
    launch(page, ehr, service)
    (callback,) = callbacks
    parts = urlsplit(callback)
    wrong = callback.replace("state=", "state=x", 1)
    page.goto(wrong)
    expect(page.locator("#smart-problem")).to_contain_text("not the one this page started")
    page.goto(callback)  # the code and state again, as a replay would send them
    expect(page.locator("#smart-problem")).to_contain_text("already used")
    assert parts.path == "/template/callback"
    # The session signed in by the first use still works; nothing was filed.
    page.goto(service + "/template/record")
    expect(page.locator("#patient-name")).to_have_text("Rowan Fictional")
    assert ehr.fhir.transactions == []


def test_an_expired_token_at_filing_keeps_the_answers_and_a_relaunch_files_them_once(
    page: Page, ehr: SmartEhr, service: str
) -> None:
    forget_filed(ehr)
    launch(page, ehr, service)
    answer_a_disclosure(page)
    ehr.fhir.fail_transactions_with = 401
    page.get_by_role("button", name="File in the record").click()
    expect(page.locator("#filing-expired")).to_contain_text("your answers are kept")
    expect(page.locator("#coded")).to_contain_text("720684005")
    assert filed_resources(ehr) == []

    ehr.fhir.fail_transactions_with = None
    page.goto(
        ehr_launch_url(ehr.launcher, service + "/template/launch", patient=PATIENT, provider=USER)
    )
    # Back from the EHR, the same entries are offered for filing: nothing to type again.
    expect(page.locator("#coded")).to_contain_text("720684005")
    page.get_by_role("button", name="File in the record").click()
    expect(page.locator("h1")).to_have_text("Filed in the patient's record")
    assert {
        c["code"] for r in filed_resources(ehr) if "code" in r for c in r["code"]["coding"]
    } == (DISCLOSURE_CODES)
    assert len(filed_resources(ehr)) == 5  # the response and four Observations, once


def test_a_refused_transaction_shows_the_outcome_and_keeps_everything(
    page: Page, ehr: SmartEhr, service: str
) -> None:
    forget_filed(ehr)
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "business-rule",
                "details": {"text": "Observation.code is not on this practice's list"},
                "expression": ["Bundle.entry[1].resource.code"],
            }
        ],
    }
    ehr.fhir.refuse_transactions = (422, outcome)
    launch(page, ehr, service)
    answer_a_disclosure(page)
    page.get_by_role("button", name="File in the record").click()
    refused = page.locator("#filing-refused")
    expect(refused).to_contain_text("Observation.code is not on this practice's list")
    expect(refused).to_contain_text("Bundle.entry[1].resource.code")
    expect(page.locator("#coded")).to_contain_text("720684005")
    assert filed_resources(ehr) == []

    ehr.fhir.refuse_transactions = None  # retry from the same page
    page.get_by_role("button", name="File in the record").click()
    expect(page.locator("h1")).to_have_text("Filed in the patient's record")
    assert len(filed_resources(ehr)) == 5


def test_the_page_without_a_launch_is_unchanged(page: Page, service: str) -> None:
    page.goto(service + "/template")
    expect(page.locator("#patient")).to_have_count(0)
    expect(page.locator("input[name=csrf]")).to_have_count(0)
    page.locator("#q-safety-alone").get_by_label("Yes").check()
    page.locator("#q-safety-safe-to-ask").get_by_label("Yes").check()
    page.get_by_label("Asked: nothing disclosed").check()
    page.get_by_role("button", name="Show the coded entries").click()
    expect(page.locator("#coded")).to_contain_text("700410005")
    expect(page.locator("#file")).to_have_count(0)
    expect(page.locator("#bundle-download")).to_be_visible()


def test_a_form_post_without_the_session_csrf_token_is_refused(service: str) -> None:
    answer = web.post(
        f"{service}/template/file", data={"csrf": "guess"}, cookies={"iris_template_session": "x"}
    )
    assert answer.status_code == 403
    answer = web.post(f"{service}/template/record", data={"outcome": "declined"})
    assert answer.status_code == 403
    # Over the size a page sends: a page saying so, not the server's plain-text 413.
    for path, size, said in (
        ("record", 300 * 1024, "too long to send, and nothing was kept"),
        ("file", 5000, "Nothing was filed"),
    ):
        answer = web.post(f"{service}/template/{path}", data={"comments": "x" * size})
        assert answer.status_code == 413, path
        assert answer.headers["content-type"].startswith("text/html")
        assert said in answer.text
