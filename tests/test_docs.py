"""The docs name only code that exists: every file path under the packages, tests and
benchmarks, and every dotted module (with any attribute after it) in the architecture picture
and the documents around it. A move or rename that leaves a document behind fails here."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    "README.md",
    "DEVELOPERS.md",
    "GLOSSARY.md",
    "codesets/README.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
]
PACKAGES = ("cds_hooks", "iris_prompt")
# A path of this repository's code: a package, tests or benchmarks, then more path.
# Placeholders (`test_<module>.py`, `{id}`, `*.py`) are taken whole, then left out.
PATH = re.compile(r"(?<![\w./-])((?:cds_hooks|iris_prompt|tests|benchmarks)/[\w./<>{}*-]*[\w/>}*])")
# A dotted name starting at a package: `iris_prompt.engine.rules.decide`.
DOTTED = re.compile(r"(?<![\w./-])((?:cds_hooks|iris_prompt)(?:\.\w+)+)")


def names_in(text: str) -> tuple[set[str], set[str]]:
    paths = {p for p in PATH.findall(text) if not re.search(r"[<{*]", p)}
    return paths, set(DOTTED.findall(text))


def dotted_exists(name: str) -> bool:
    """The longest prefix that is a module, and the rest attributes of it."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut])
        if (ROOT / f"{module}.py").is_file() or (ROOT / module / "__init__.py").is_file():
            value: object = importlib.import_module(".".join(parts[:cut]))
            for attribute in parts[cut:]:
                if not hasattr(value, attribute):
                    return False
                value = getattr(value, attribute)
            return True
    return False


def test_the_architecture_doc_names_every_subpackage_and_has_a_diagram() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "```mermaid" in text
    subpackages = [p.parent.name for p in (ROOT / "iris_prompt").glob("*/__init__.py")]
    assert subpackages
    for name in subpackages:
        assert f"iris_prompt/{name}/" in text, name


@pytest.mark.parametrize("doc", DOCS)
def test_every_module_a_doc_names_exists(doc: str) -> None:
    paths, dotted = names_in((ROOT / doc).read_text(encoding="utf-8"))
    missing = [p for p in sorted(paths) if not (ROOT / p).exists()]
    missing += [d for d in sorted(dotted) if not dotted_exists(d)]
    assert missing == [], f"{doc} names what does not exist: {missing}"


def test_the_check_catches_a_name_that_does_not_exist() -> None:
    paths, dotted = names_in(
        "`iris_prompt/engine/rules.py`, `iris_prompt/household_lookup.py`, "
        "`iris_prompt.engine.rules.decide`, `iris_prompt.engine.rules.nothing`, "
        "`iris_prompt.simulate_run`, `tests/unit/cds_hooks/test_<module>.py`"
    )
    assert paths == {"iris_prompt/engine/rules.py", "iris_prompt/household_lookup.py"}
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == [
        "iris_prompt/household_lookup.py"
    ]
    assert {d: dotted_exists(d) for d in dotted} == {
        "iris_prompt.engine.rules.decide": True,
        "iris_prompt.engine.rules.nothing": False,
        "iris_prompt.simulate_run": False,
    }


def test_the_readme_configuration_table_lists_every_setting_and_no_other() -> None:
    """An operator configures the service from the README's table: a setting missing there is
    unknown to them, and a row for a setting that is gone misleads them."""
    from iris_prompt.settings import Settings

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `IRIS_(\w+)` \|", text, flags=re.MULTILINE))
    expected = {name.upper() for name in Settings.model_fields}
    assert sorted(expected - rows) == [], "settings missing from the README's table"
    assert sorted(rows - expected) == [], "README rows for settings that do not exist"


def test_the_deployment_metrics_table_lists_every_metric_and_no_other() -> None:
    """Operators build dashboards and alerts from the table in docs/deployment.md: a metric
    missing there goes unwatched, and a row for one that is gone is an alert that never fires."""
    from prometheus_client.metrics import MetricWrapperBase

    from iris_prompt.ops import metrics

    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    rows = {
        name
        for cell in re.findall(r"^\| (`iris_[^|]*) \|", text, flags=re.MULTILINE)
        for name in re.findall(r"`(iris_\w+)`", cell)
    }
    defined = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name
            defined.add(name + "_total" if value._type == "counter" else name)
    assert sorted(defined - rows) == [], "metrics missing from docs/deployment.md's table"
    assert sorted(rows - defined) == [], "docs/deployment.md rows for metrics that do not exist"


def test_the_readme_states_the_feedback_limits_the_store_applies() -> None:
    """An EHR vendor sizes its comment box from the README: it must give the limits a post is
    refused over, not looser ones."""
    from iris_prompt.store.feedback import LIMITS

    readme = (ROOT / "README.md").read_text()
    assert f"`userComment` of at most {LIMITS['overrideReason.userComment']:,} characters" in readme
    assert f"card and suggestion ids and a reason's system at most {LIMITS['card']}" in readme
    assert (
        LIMITS["card"] == LIMITS["acceptedSuggestions.id"] == LIMITS["overrideReason.reason.system"]
    )
    assert f"its code at most {LIMITS['overrideReason.reason.code']}," in readme
