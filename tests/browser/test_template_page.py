"""The recording page in a real browser: a disclosure with 14 DASH 'yes' answers, end to end."""

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARAC = "978091000000105"
LABELS = {
    ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
    ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "SDV"),
}


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def test_a_disclosure_with_14_dash_yes_recommends_marac_and_says_to_hide_it_online(
    page: Page, template_server: str
) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    page.goto(template_server + "/template")

    # By keyboard: the first control on the page is "patient on their own: yes".
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(page.locator("#q-safety-alone-true")).to_be_checked()
    # Questions appear only once they apply, and every control is found through its label.
    expect(page.locator("#q-hark")).to_be_hidden()
    page.locator("#q-safety-safe-to-ask").get_by_label("Yes").check()
    page.locator("#q-hark-physical").get_by_label("Yes").check()
    page.locator("#q-hark-safe-now").get_by_label("No").check()
    expect(page.locator("#q-dash")).to_be_hidden()
    page.get_by_label("Abuse disclosed").check()
    expect(page.locator("#q-dash")).to_be_visible()
    page.get_by_label("Happening now or within the last 12 months").check()
    page.get_by_label("Physical", exact=True).check()
    page.get_by_label("Stalking or harassment").check()

    count = page.locator("#dash-count")
    for n in range(1, 14):
        page.locator(f"#q-dash-q{n:02d}").get_by_label("Yes").check()
    expect(count).to_have_text("13")
    expect(page.locator("#dash-status")).not_to_contain_text("Visible high risk")
    page.locator("#q-dash-q14").get_by_label("Yes").check()
    expect(count).to_have_text("14")
    expect(page.locator("#dash-status")).to_contain_text("Visible high risk: refer to MARAC")

    submit = page.get_by_role("button", name="Show the coded entries")
    submit.focus()
    page.keyboard.press("Enter")

    # Not safe to go home: what to do now comes first, announced to screen readers.
    urgent = page.get_by_role("alert")
    expect(urgent).to_contain_text("does not feel safe to go home today")
    expect(urgent).to_contain_text("call 999 now")
    expect(page.locator("main section").first).to_have_id("immediate-safety")
    expect(page.locator("#marac")).to_contain_text("MARAC referral recommended")
    expect(page.locator("#marac")).to_contain_text("14 of 24 DASH answers are yes")
    hide = page.locator("#hide-online")
    expect(hide).to_contain_text("Hide this consultation from the patient's online record")
    expect(hide).to_contain_text("Online Visibility")
    expect(hide).to_contain_text("Do not show in the online record")
    expect(page.locator("#coded")).to_contain_text(MARAC)
    expect(page.locator("#uncoded")).to_contain_text("Stalking or harassment")

    bundle = json.loads(page.locator("#bundle-json").inner_text())
    assert bundle["type"] == "transaction"
    for entry in bundle["entry"]:
        assert {(s["system"], s["code"]) for s in entry["resource"]["meta"]["security"]} == LABELS
    with page.expect_download() as download:
        page.locator("#bundle-download").click()
    assert json.loads(Path(download.value.path()).read_text(encoding="utf-8")) == bundle

    # Everything the page loaded came from the service itself (the download is a data: URL,
    # which never leaves the browser).
    loaded = [r.url for r in requests if not r.url.startswith("data:")]
    assert len(loaded) >= 6  # two pages, each with its stylesheet and script
    assert {origin(url) for url in loaded} == {origin(template_server)}
    assert all(urlsplit(url).query == "" for url in loaded)  # nothing clinical in a URL


def test_every_control_has_a_label_and_hidden_sections_send_nothing(
    page: Page, template_server: str
) -> None:
    page.goto(template_server + "/template")
    unlabelled = page.evaluate(
        "Array.from(document.querySelectorAll('input'))"
        ".filter(i => i.labels.length === 0).map(i => i.id)"
    )
    assert unlabelled == []
    # Choose a disclosure, answer a DASH topic, then change the outcome: the DASH answer no
    # longer applies, so its control is disabled and the page submits without it.
    page.locator("#q-safety-alone").get_by_label("Yes").check()
    page.locator("#q-safety-safe-to-ask").get_by_label("Yes").check()
    page.get_by_label("Abuse disclosed").check()
    page.locator("#q-dash-q01").get_by_label("Yes").check()
    page.get_by_label("Patient declined to answer").check()
    expect(page.locator("#q-dash")).to_be_hidden()
    expect(page.locator("#q-dash-q01-yes")).to_be_disabled()
    page.get_by_role("button", name="Show the coded entries").click()
    expect(page.locator("#coded")).to_contain_text("700411009")
    expect(page.locator("#coded")).not_to_contain_text("886191000000106")
    expect(page.locator("#marac")).to_have_count(0)
