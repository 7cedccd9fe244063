"""The simulation's HTML report, opened from a file in Debian's chromium (tests/support/browser):
it renders its charts and tables and asks the network for nothing."""

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from iris_prompt.simulate.cli import simulate
from iris_prompt.simulate.html import report_html
from tests.unit.simulate.conftest import AS_OF, BUNDLES, codesets_without

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    old = codesets_without(folder / "old-codesets", "Read v2", "E2002")
    report = simulate(BUNDLES, compare_dir=old, as_of=AS_OF, workers=1)
    page = folder / "simulation.html"
    page.write_text(report_html(report), encoding="utf-8")
    return page


def test_the_report_renders_offline_with_its_charts(browser: Browser, report_file: Path) -> None:
    context = browser.new_context()
    requested: list[str] = []
    problems: list[str] = []

    def record(route: Route) -> None:
        requested.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", record)
    page = context.new_page()
    page.on("console", lambda message: problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")

    assert requested == [report_file.as_uri()]  # the page itself, and nothing else
    assert problems == []  # no blocked fetch, no script error
    assert page.title() == "Alert-burden simulation"

    # Two charts: prompt rate by category (old and new bars) and the change by category.
    charts = page.locator("svg[role=img]")
    assert charts.count() == 2
    first = charts.nth(0)
    assert first.locator("title").first.text_content() == (
        "Enquiry prompt rate by category, old and new"
    )
    bars = first.locator("rect.bar")
    # Fourteen categories prompt in the population (five of mental health and others, and the
    # nine trigger 2.0.0 added, one patient each), old and new.
    assert bars.count() == 28
    widths = [box["width"] for box in (bars.nth(i).bounding_box() for i in range(28)) if box]
    assert len(widths) == 28 and max(widths) > 100  # drawn, and to a visible scale
    assert first.get_by_text("Anxiety and panic").is_visible()

    row = page.locator("tr", has_text="Enquiry prompt").first
    assert [c.strip() for c in row.locator("td").all_inner_texts()] == [
        "Enquiry prompt",
        "16",
        "18",
        "+2",  # the two patients whose only trigger is E2002, left out of the old sets
        "54.5%",  # 18 of 33 adults
    ]
    assert page.get_by_text("Change in who gets an enquiry prompt").is_visible()
    assert page.locator("td", has_text="E2002").count() >= 2  # top codes, and the change
    context.close()
