"""The clinical rules page (`GET /rules`, rendered from docs/rules.md) and the link every card
carries to the rule that decided it: the page is the document, each anchor a card points to is
there and is the right rule, and no link carries anything of the patient."""

import base64
import datetime
import hashlib
import os
import re
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cds_hooks import Card
from iris_prompt import rules_page
from iris_prompt.app import create_app
from iris_prompt.engine.card_text import CardSettings
from iris_prompt.engine.cards import RULE_ANCHORS, cards_for, withheld_card
from iris_prompt.engine.household import HouseholdMember
from iris_prompt.engine.risk_flags import MappaRisk
from iris_prompt.engine.rules import Decision
from iris_prompt.rules_page import rules_document
from iris_prompt.settings import Settings
from iris_prompt.template.links import RULES_LABEL
from tests.conftest import bundled_codesets
from tests.support.inprocess import in_process
from tests.support.process import free_port

BASE = "https://iris.example.nhs.uk"
PATIENT = "Patient/9990000018-record-id"
NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
# How docs/rules.md names the rule that decides each kind of card: its link must land there.
RULE_TITLES = {
    "enquiry": "Triggers.",
    "known-abuse": "Known abuse.",
    "mappa": "Household MAPPA.",
    "unchecked": "Household not checked, nothing else to show.",
    "withheld": "The withheld card",
}


class Elements(HTMLParser):
    """The text of every element with an id, by id."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        self._open.append(element_id)
        if element_id is not None:
            self.text[element_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id is not None:
                self.text[element_id] += data


@pytest.fixture(scope="module")
def page() -> tuple[int, dict[str, str], str]:
    app = create_app(Settings(local_mode=True), codesets=bundled_codesets())
    with in_process(app) as client:
        response = client.get("/rules")
    return response.status_code, dict(response.headers), response.text


def ids_in(html: str) -> dict[str, str]:
    parser = Elements()
    parser.feed(html)
    return parser.text


def every_kind_of_card() -> dict[str, Card]:
    member = HouseholdMember("partner", 40, MappaRisk((("known-adult", "high"),)))
    made = {}
    for kind, decision in {
        "enquiry": Decision(enquiry=True, household_checked=True, age=34),
        "known-abuse": Decision(known_abuse=True, household_checked=True, age=34),
        "mappa": Decision(mappa=(member,), household_checked=True, age=8),
        "unchecked": Decision(unchecked=True, household_checked=False, age=8),
    }.items():
        (card,) = cards_for(
            decision,
            CardSettings(smart_launch=True),
            base_url=BASE,
            hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            patient_ref=PATIENT,
            now=NOW,
        )
        made[kind] = card
    made["withheld"] = withheld_card(CardSettings(), BASE)
    return made


def test_the_page_is_the_rules_document_served_as_html(
    page: tuple[int, dict[str, str], str],
) -> None:
    status, headers, html = page
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    policy = dict(
        directive.strip().partition(" ")[::2]
        for directive in headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert policy["frame-ancestors"] == "'none'"  # no other page may frame the rules
    style = base64.b64encode(hashlib.sha256(rules_page.STYLE.encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{style}'"  # its one style sheet, by hash
    assert headers["x-content-type-options"] == "nosniff"
    assert "<title>The clinical rules | IRIS prompt</title>" in html
    # The document's own words, from the file people edit, not a copy.
    text = " ".join(ids_in(html).values())
    first_rule = DOCUMENT.read_text(encoding="utf-8").split("1. **Clinicians only.**")[1]
    sentence = " ".join(first_rule.split("2. **")[0].split()[:12])
    assert sentence.replace("`", "") in " ".join(text.split())
    assert rules_document().resolve() == DOCUMENT.resolve()


def test_every_card_links_once_to_the_rule_that_decided_it(
    page: tuple[int, dict[str, str], str],
) -> None:
    anchors = ids_in(page[2])
    cards = every_kind_of_card()
    assert set(cards) == set(RULE_ANCHORS)
    for kind, card in cards.items():
        assert card.links is not None, kind
        rules = [link for link in card.links if link.label == RULES_LABEL]
        assert len(rules) == 1, kind
        (link,) = rules
        url = urlsplit(link.url)
        assert link.type == "absolute" and link.app_context is None
        assert f"{url.scheme}://{url.netloc}" == BASE and url.path == "/rules", kind
        assert url.query == "" and url.fragment == RULE_ANCHORS[kind], kind
        assert url.fragment in anchors, f"{kind}: #{url.fragment} is not on the page"
        assert anchors[url.fragment].strip().startswith(RULE_TITLES[kind]), kind
        assert "9990000018" not in link.url and "record-id" not in link.url


def numbered_rules(markdown: str) -> dict[int, str]:
    """The rules as the raw document numbers them, counted without markdown-it: the lines of the
    section "What the prompt does" (up to the next `#` or `##` heading) that start, unindented,
    with a number and a bold title: `6. **Household MAPPA.**`."""
    section = re.split(r"^## What the prompt does$", markdown, maxsplit=1, flags=re.MULTILINE)[1]
    section = re.split(r"^#{1,2} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    found = re.findall(r"^(\d+)\. \*\*(.+?)\*\*", section, flags=re.MULTILINE)
    return {int(number): title for number, title in found}


def test_every_numbered_rule_and_every_section_has_its_anchor(
    page: tuple[int, dict[str, str], str],
) -> None:
    anchors = ids_in(page[2])
    rules = numbered_rules(DOCUMENT.read_text(encoding="utf-8"))
    assert list(rules) == list(range(1, len(rules) + 1)) and len(rules) >= 9
    # The last rule too, in a list of its own under "Repeated calls".
    assert rules[9] == "Once per consultation across hooks."
    assert [a for a in anchors if a.startswith("rule-")] == [f"rule-{n}" for n in rules]
    for number, title in rules.items():
        assert anchors[f"rule-{number}"].strip().startswith(title), number
    sections = ("what-the-prompt-does", "repeated-calls", "the-household", "the-cards")
    for section in (*sections, "the-withheld-card"):
        assert section in anchors


def test_lists_inside_a_rule_never_shift_the_numbering() -> None:
    markdown = """## What the prompt does

1. **First.** It covers:
   - one case,
   - another case;

   1. a numbered aside,
   2. and another.
2. **Second.**
   * a bullet

### A subsection

3. **Third.**

## Elsewhere

1. **Not a rule.**
"""
    anchors = ids_in(rules_page.render_rules(markdown))
    assert [a for a in anchors if a.startswith("rule-")] == ["rule-1", "rule-2", "rule-3"]
    for number, title in enumerate(("First.", "Second.", "Third."), start=1):
        assert anchors[f"rule-{number}"].strip().startswith(title)
    assert numbered_rules(markdown) == {1: "First.", 2: "Second.", 3: "Third."}


def test_two_rules_of_one_number_stop_the_page_being_built() -> None:
    markdown = "## What the prompt does\n\n1. **One.**\n\n### Again\n\n1. **One again.**\n"
    with pytest.raises(ValueError, match="two rules 1"):
        rules_page.render_rules(markdown)


def test_the_document_reaches_an_installation_and_the_image() -> None:
    """A wheel installs docs/rules.md as data (pyproject `data-files`); the image's build stage
    copies it in, past .dockerignore, which keeps the rest of docs/ out."""
    project = DOCUMENT.parents[1]
    config = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["data-files"]["share/iris-prompt/docs"] == ["docs/rules.md"]
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY docs/rules.md ./docs/rules.md" in dockerfile
    ignored = (project / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored.index("!docs/rules.md") > ignored.index("docs/*")


def test_an_installed_copy_is_found_when_there_is_no_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "share" / "iris-prompt" / "docs" / "rules.md"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(DOCUMENT.read_bytes())
    fake_module = tmp_path / "site-packages" / "iris_prompt" / "rules_page.py"
    monkeypatch.setattr(rules_page, "__file__", str(fake_module))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert rules_document() == installed


def test_without_the_document_the_service_refuses_to_start_naming_both_places(
    tmp_path: Path,
) -> None:
    """Every card links to the rules page: with neither the installed copy nor a checkout's
    docs/rules.md, `iris-prompt serve` stops as other start-up refusals do, before anything is
    made, and says where it looked."""
    module = tmp_path / "site-packages" / "iris_prompt" / "rules_page.py"
    start = (
        "import sys\n"
        "from iris_prompt import cli, rules_page\n"
        f"rules_page.__file__ = {str(module)!r}\n"
        f"sys.prefix = {str(tmp_path)!r}\n"
        f"sys.exit(cli.main(['serve', '--local', '--port', '{free_port()}']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    env["IRIS_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-c", start], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("iris-prompt: cannot start: the clinical rules document")
    installed = tmp_path / "share" / "iris-prompt" / "docs" / "rules.md"
    checkout = tmp_path / "site-packages" / "docs" / "rules.md"
    assert f"not at {installed} (the installed data copy)" in result.stderr
    assert f"nor at {checkout} (a source checkout)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_the_ehr_origins_the_settings_name_may_frame_the_rules_and_the_template() -> None:
    """IRIS_FRAME_ANCESTORS: an EHR that shows card links inside its own page lists its origin;
    the two pages a card opens then allow that page, and only it, to frame them."""
    ehr = ["https://ehr.trust.example.nhs.uk", "https://portal.example.nhs.uk:8443"]
    app = create_app(Settings(local_mode=True, frame_ancestors=ehr), codesets=bundled_codesets())
    with in_process(app) as client:
        for path in ("/rules", "/template"):
            policy = client.get(path).headers["content-security-policy"]
            assert f"frame-ancestors {' '.join(ehr)}" in policy, path
            assert "default-src 'none'" in policy  # the rest of the policy unchanged
