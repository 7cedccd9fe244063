"""Counting and the written reports: exact figures, attribution of changes, no identifiers."""

import csv
import io
import json
from pathlib import Path

import pytest

from iris_prompt.codesets.files import default_codesets_dir, load_codesets
from iris_prompt.simulate.cli import simulate
from iris_prompt.simulate.html import bar_chart, report_html
from iris_prompt.simulate.population import Skipped
from iris_prompt.simulate.report import Report, report_csv, report_json, report_text
from iris_prompt.simulate.tally import Comparison, Hit, Outcome, Tally, percent
from tests.unit.simulate.conftest import AS_OF, BUNDLES

SCT, READ = "http://snomed.info/sct", "http://read.info/readv2"
DEPRESSION = Hit(SCT, "35489007", "Depressive disorder", "depression")
ANXIETY = Hit(SCT, "197480006", "Anxiety disorder", "anxiety")
GAD_READ = Hit(READ, "E2002", "Generalised anxiety disorder", "anxiety")
VICTIM = Hit(SCT, "879911000000102", "Victim of domestic abuse", "victim")


def test_percent_of_nobody_is_zero() -> None:
    assert percent(0, 0) == 0.0
    assert percent(1, 3) == 33.3


def test_a_tally_counts_patients_not_codes() -> None:
    tally = Tally()
    tally.add(Outcome(enquiry=True, triggers=(DEPRESSION, ANXIETY, GAD_READ)))
    tally.add(Outcome(enquiry=True, triggers=(GAD_READ,), mappa=True))
    tally.add(Outcome(suppressed=True, triggers=(DEPRESSION,)))
    tally.add(Outcome(known_abuse=True, known=(VICTIM,), triggers=(DEPRESSION,)))
    tally.add(Outcome(reason="under 16"))
    tally.add(Outcome())
    assert (tally.records, tally.considered, dict(tally.not_considered)) == (6, 5, {"under 16": 1})
    assert (tally.enquiry, tally.known_abuse, tally.mappa, tally.suppressed) == (2, 1, 1, 1)
    # Two anxiety codes for one patient: one patient in the category.
    assert dict(tally.enquiry_by_category) == {"depression": 1, "anxiety": 2}
    assert dict(tally.known_abuse_by_category) == {"victim": 1}
    assert dict(tally.suppressed_by_category) == {"depression": 1}
    # Most first; ties in code order (Read v2's URI sorts after SNOMED CT's).
    assert tally.top_codes() == [(GAD_READ, 2), (ANXIETY, 1), (DEPRESSION, 1)]
    assert tally.top_codes(1) == [(GAD_READ, 2)]


def test_a_change_is_put_down_to_the_codes_that_differ() -> None:
    comparison = Comparison()
    # Gains a prompt because GAD_READ now counts: GAD_READ alone is the cause.
    comparison.add(
        "a",
        Outcome(suppressed=True, triggers=(DEPRESSION,)),
        Outcome(enquiry=True, triggers=(DEPRESSION, GAD_READ)),
    )
    # Same codes both times (a suppressing code was removed): every code is the cause.
    comparison.add(
        "b",
        Outcome(suppressed=True, triggers=(ANXIETY,)),
        Outcome(enquiry=True, triggers=(ANXIETY,)),
    )
    # Known abuse added: the enquiry moves to a known-abuse card.
    comparison.add(
        "c",
        Outcome(enquiry=True, triggers=(DEPRESSION,)),
        Outcome(known_abuse=True, triggers=(DEPRESSION,), known=(VICTIM,)),
    )
    comparison.add("d", Outcome(enquiry=True, triggers=(DEPRESSION,)), Outcome())
    enquiry = comparison.enquiry
    assert (enquiry.newly, enquiry.no_longer) == ({"a", "b"}, {"c", "d"})
    assert dict(enquiry.newly_by_code) == {GAD_READ: 1, ANXIETY: 1}
    assert dict(enquiry.newly_by_category) == {"anxiety": 2}
    assert dict(enquiry.no_longer_by_code) == {DEPRESSION: 2}
    assert (comparison.known_abuse.newly, comparison.known_abuse.no_longer) == ({"c"}, set())
    assert dict(comparison.known_abuse.newly_by_code) == {VICTIM: 1}


@pytest.fixture(scope="module")
def compared(old_codesets: Path) -> Report:
    return simulate(BUNDLES, compare_dir=old_codesets, as_of=AS_OF, workers=1)


def test_no_report_holds_a_patient_identifier(compared: Report) -> None:
    for text in (
        json.dumps(report_json(compared)),
        report_csv(compared),
        report_text(compared),
        report_html(compared),
    ):
        assert "pop-" not in text
        assert "9990001235" not in text  # the NHS number in the population


def test_the_table_says_what_a_lead_needs(compared: Report) -> None:
    text = report_text(compared)
    assert "36 patient records in" in text and "as of 2026-12-01" in text
    lines = text.splitlines()

    def row(label: str) -> list[str]:
        return next(line for line in lines if line.strip().startswith(label)).split()

    assert row("Enquiry prompt")[-4:] == ["16", "18", "+2", "54.5%"]
    assert row("Adults considered")[-4:] == ["33", "33", "0", "100.0%"]
    assert row("Held back by a recent")[-4:] == ["2", "1", "-1", "3.0%"]
    assert row("Anxiety and panic")[-4:] == ["2", "4", "+2", "12.1%"]
    assert "  newly, Read v2 E2002 Generalised anxiety disorder: 2" in lines
    assert "  newly: 2   no longer: 0" in lines
    assert "  Not considered (under 16): 2" in lines


def test_the_csv_is_one_long_table(compared: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(compared))))
    by = {(r["section"], r["item"], r["code"]): r for r in rows}
    assert by[("summary", "enquiry_prompt", "")]["count"] == "18"
    assert by[("old-summary", "enquiry_prompt", "")]["count"] == "16"
    assert by[("enquiry-by-code", "anxiety", "E2002")]["percent"] == "9.1"
    assert by[("enquiry-newly-by-code", "anxiety", "E2002")]["count"] == "2"
    assert by[("enquiry-change", "newly", "")]["count"] == "2"
    assert {r["section"] for r in rows} >= {"not-considered", "known-abuse-by-category"}


def test_the_json_report_has_the_comparison(compared: Report) -> None:
    data = report_json(compared)
    assert data["as_of"] == "2026-12-01"
    assert data["codesets"] == load_codesets(default_codesets_dir()).versions()
    assert data["compare"]["summary"]["enquiry_prompt"] == {"count": 16, "percent": 48.5}
    assert data["compare"]["enquiry"]["newly"] == 2
    assert data["compare"]["enquiry"]["newly_by_code"][0]["code"] == "E2002"
    assert data["compare"]["known_abuse"] == {
        "newly": 0,
        "no_longer": 0,
        "newly_by_category": [],
        "newly_by_code": [],
        "no_longer_by_category": [],
        "no_longer_by_code": [],
    }


def test_bars_are_drawn_to_scale_and_labelled() -> None:
    svg = bar_chart(
        "t", [("Depression", [10.0, 20.0]), ("Anxiety & panic", [5.0, 0.0])], ["old", "new"]
    )
    assert svg.count("<rect") == 4
    assert 'width="360.0"' in svg and 'width="180.0"' in svg and 'width="90.0"' in svg
    assert "Anxiety &amp; panic" in svg and "20.0%" in svg
    assert "(none)" in bar_chart("t", [], ["new"])


def test_the_html_page_fetches_nothing(compared: Report) -> None:
    page = report_html(compared)
    for forbidden in ("<script", "<link", "@import", "url(", "src=", "http://", "https://"):
        if forbidden in ("http://", "https://"):
            # Only the SVG namespace, which is an identifier, not a fetch.
            assert page.replace('xmlns="http://www.w3.org/2000/svg"', "").count(forbidden) == 0
        else:
            assert forbidden not in page


def test_the_html_page_escapes_what_it_is_given() -> None:
    # A folder name, a category title or a skipped file's reason could hold markup: it is shown
    # as text, never run.
    tally = Tally()
    tally.add(Outcome(enquiry=True, triggers=(DEPRESSION,)))
    report = Report(
        population="exports/<script>alert(1)</script>",
        kind="FHIR Bundles",
        as_of=AS_OF,
        codesets={"iris-prompt-trigger": "2.0.0"},
        new=tally,
        titles={"depression": 'Depression "& low mood"'},
        skipped=[Skipped("bad.json", "not JSON: <b>")],
    )
    page = report_html(report)
    assert "<script" not in page and "<b>" not in page
    assert "exports/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Depression &#34;&amp; low mood&#34;" in page
    assert "<h2>Skipped records</h2>" in page and "not JSON: &lt;b&gt;" in page
