"""The clinical rules page in a real browser: a card's link lands on its rule, and the page's
one style sheet is allowed by its Content-Security-Policy hash (a wrong hash leaves the page
unstyled, and chromium says why on its console)."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import ConsoleMessage, Page, expect

from iris_prompt.rules_page import rules_router
from tests.support.server import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def rules_server() -> Iterator[str]:
    app = FastAPI()
    app.include_router(rules_router())
    with serve(app, access_log=False) as base_url:
        yield base_url


def test_a_cards_link_lands_on_its_rule_styled_as_the_policy_allows(
    page: Page, rules_server: str
) -> None:
    console: list[ConsoleMessage] = []
    page.on("console", lambda message: console.append(message))
    page.goto(rules_server + "/rules#rule-6")
    rule = page.locator("#rule-6")
    expect(rule).to_be_in_viewport()
    expect(rule).to_contain_text("Household MAPPA.")
    collapse = page.evaluate("getComputedStyle(document.querySelector('table')).borderCollapse")
    assert collapse == "collapse"  # the hashed inline style applied
    assert [m.text for m in console if m.type == "error"] == []
