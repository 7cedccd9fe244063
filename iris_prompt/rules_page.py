"""The clinical rules, served to practice staff: `GET /rules` renders `docs/rules.md`, the one
statement of what the service decides and what its cards say, as a page every card links to.

The document is the source: nothing of its text is copied here. It is rendered when the app is
built (once for the same text in a process), with markdown-it-py (CommonMark, with tables, raw
HTML disabled), and given stable anchors: each heading its GitHub-style slug
(`#the-household`), and each numbered rule of "What the prompt does" `#rule-N` by its own
number, which is where a card's rules link points (`iris_prompt.engine.cards.RULE_ANCHORS`).

In a source checkout (and the editable install `make serve` uses) the document is the
repository's `docs/rules.md`; a wheel installs it as data under `<prefix>/share/iris-prompt/docs`
(pyproject `data-files`), as it does the code sets. With neither, the service does not start.
"""

import base64
import hashlib
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt
from markdown_it.token import Token

from cds_hooks.numbers import ascii_number
from iris_prompt.urls import RULES_PATH

__all__ = [
    "RulesDocumentMissing",
    "render_rules",
    "rules_document",
    "rules_headers",
    "rules_router",
]

# The numbered rules are the top-level ordered lists under this heading and its subsections.
RULES_HEADING = "What the prompt does"

STYLE = """
body { font-family: system-ui, sans-serif; line-height: 1.5; margin: 0 auto; max-width: 50rem;
  padding: 0 1rem 3rem; color: #1d1d1d; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #b1b4b6; padding: 0.3rem 0.5rem; vertical-align: top; text-align: left; }
code { background: #f3f2f1; padding: 0 0.2rem; }
li[id]:target, h2:target, h3:target { background: #fff7bf; }
"""


def rules_headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    """The page's headers. The document and its one style sheet, allowed by its hash: no
    script, nothing from elsewhere; framed only by the pages `frame_ancestors` allows
    (IRIS_FRAME_ANCESTORS; by default none, so that no other site can overlay the rules)."""
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": (
            "default-src 'none'; style-src "
            f"'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'; "
            f"base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ title }} | IRIS prompt</title>
<style>{{ style | safe }}</style>
</head>
<body>
<main>
{{ body | safe }}
</main>
</body>
</html>
"""
)


class RulesDocumentMissing(ValueError):
    """Neither copy of `docs/rules.md` is there. Every card links to the rules page, so the
    service does not start without it (`iris-prompt: cannot start: ...`)."""


def rules_document() -> Path:
    """Where `docs/rules.md` is: the checkout's, else the installed copy; RulesDocumentMissing,
    naming both places, when neither is."""
    checkout = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
    installed = Path(sys.prefix) / "share" / "iris-prompt" / "docs" / "rules.md"
    found = next((path for path in (checkout, installed) if path.is_file()), None)
    if found is None:
        raise RulesDocumentMissing(
            f"the clinical rules document (docs/rules.md) is missing: not at {installed} (the "
            f"installed data copy) nor at {checkout} (a source checkout). Every card links to "
            "it: reinstall iris-prompt, or serve from a complete checkout"
        )
    return found


def slug(text: str) -> str:
    """A heading's anchor, as GitHub makes it.

    >>> slug("The household"), slug("What the prompt does"), slug("Reading the record")
    ('the-household', 'what-the-prompt-does', 'reading-the-record')
    """
    return re.sub(r"[^\w\- ]", "", text.lower()).strip().replace(" ", "-")


def _anchor(tokens: list[Token]) -> None:
    """Headings get their slug; each item of a top-level ordered list under RULES_HEADING (its
    subsections too, up to the next `#` or `##` heading) gets `rule-N`, N the item's own number
    as written, so that lists nested inside a rule, or a rule in a list of its own (rule 9,
    under "Repeated calls"), never shift the numbering. Two rules of one number would make a
    card's link ambiguous: the page is not built (`ValueError`, so start-up stops)."""
    in_rules = False
    numbered: set[str] = set()
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            title = tokens[index + 1].content
            token.attrSet("id", slug(title))
            if token.tag in ("h1", "h2"):
                in_rules = title == RULES_HEADING
        elif (
            in_rules
            and token.type == "list_item_open"
            and token.level == 1  # an item of a list at the top of the document
            # An ordered list's item, by its number as written.
            and (number := ascii_number(token.info)) is not None
        ):
            anchor = f"rule-{number}"
            if anchor in numbered:
                raise ValueError(f"docs/rules.md numbers two rules {token.info}: #{anchor}")
            numbered.add(anchor)
            token.attrSet("id", anchor)


@lru_cache(maxsize=4)
def render_rules(markdown: str) -> str:
    """The page for `markdown` (the rules document), with its anchors. Kept for the same text: a
    process that builds the app more than once (the tests, a benchmark) parses it once."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(markdown)
    _anchor(tokens)
    body = parser.renderer.render(tokens, parser.options, {})
    titles = [
        tokens[i + 1].content for i, t in enumerate(tokens) if t.tag == "h1" and t.nesting == 1
    ]
    return PAGE.render(title=titles[0] if titles else "The clinical rules", body=body, style=STYLE)


def rules_router(document: Path | None = None, *, frame_ancestors: str = "'none'") -> APIRouter:
    """`GET /rules`: the rules page, rendered now, once. No JWT: it holds no patient data."""
    page = render_rules((document or rules_document()).read_text(encoding="utf-8"))
    headers = rules_headers(frame_ancestors)
    router = APIRouter(redirect_slashes=False)

    @router.get(RULES_PATH)
    def rules() -> Any:
        return HTMLResponse(page, headers=headers)

    return router
