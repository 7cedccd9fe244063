"""The hazard log (`docs/safety/hazard-log.toml`) stays a DCB0129 hazard log whose every control
is proven: at least 25 hazards covering what issue 11 names, every control naming tests that
exist (by collecting them, as `make safety-case` runs them), risks on the 5x5 matrix, residual
never above initial, and the clinical safety officer's sign-off present and empty. Then the
safety case machinery itself: a named test that fails or does not exist leaves its control red.
"""

import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

from iris_prompt.safety.case import Run, main, render
from iris_prompt.safety.hazard_log import HazardLog, HazardLogError, load, log_from_toml

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "docs" / "safety" / "hazard-log.toml"
NODE_ID = re.compile(r"^tests/[\w/]+\.py::test_\w+(\[[^\]]+\])?$")

# What issue 11 point 18 asks the log to cover: every point of issue 11 and the topics it names,
# the robustness findings of issue 16 and the conformance points of issue 17.
TOPICS = {f"issue-11.{n}" for n in range(1, 18)} | {
    "code-set-edits",
    "online-record-access",
    "perpetrator-sees-screen",
    "stale-or-wrong-person-flags",
    "wrong-patient-in-context",
    "fhir-server-failure",
    "clock-and-time-zone",
    "jwt-misconfiguration",
    "alert-fatigue",
    "too-large-household",
    "pool-exhaustion",
    "private-address-fhir-server",
    "malformed-input",
    "anonymous-fhir-reads",
    "plain-http",
    "duplicate-prompts",
}
# DCB0129's matrix (NHS England's implementation guidance), likelihood from very low up by
# severity from minor up: kept here too, so that an edit of the log's copy fails.
DCB0129 = ((1, 1, 2, 2, 3), (1, 2, 2, 3, 4), (2, 2, 3, 3, 4), (2, 3, 3, 4, 5), (3, 4, 4, 5, 5))


@pytest.fixture(scope="module")
def log() -> HazardLog:
    return load(LOG)


@cache
def collected(files: tuple[str, ...]) -> frozenset[str]:
    """The node ids pytest collects from `files`, as `make safety-case` would run them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return frozenset(line for line in done.stdout.splitlines() if "::" in line)


def test_at_least_25_hazards_with_unique_ids_and_the_ids_already_cited(log: HazardLog) -> None:
    ids = [h.id for h in log.hazards]
    assert len(ids) >= 25
    assert len(set(ids)) == len(ids)
    # Cited by docs/rules.md and the store's code since before the log was data.
    assert {"H-REPEAT", "H-REPEAT-2"} <= set(ids)


def test_every_topic_the_issues_name_is_covered(log: HazardLog) -> None:
    covered = {topic for hazard in log.hazards for topic in hazard.topics}
    assert sorted(TOPICS - covered) == []


def test_every_hazard_has_causes_effects_and_controls(log: HazardLog) -> None:
    for hazard in log.hazards:
        assert hazard.causes and hazard.effects and hazard.controls, hazard.id


def test_every_control_names_at_least_one_test_by_node_id(log: HazardLog) -> None:
    for hazard in log.hazards:
        for control in hazard.controls:
            assert control.tests, f"{hazard.id}: {control.says}"
            bad = [t for t in control.tests if not NODE_ID.match(t)]
            assert bad == [], f"{hazard.id}: not node ids of test functions: {bad}"


def test_every_named_test_exists(log: HazardLog, request: pytest.FixtureRequest) -> None:
    named = log.node_ids()
    files = tuple(sorted({n.partition("::")[0] for n in named}))
    missing_files = [f for f in files if not (ROOT / f).is_file()]
    assert missing_files == []

    def missing(names: list[str], found: frozenset[str]) -> list[str]:
        return [
            n for n in names if n not in found and not any(f.startswith(n + "[") for f in found)
        ]

    # A run of the whole suite has collected them already (each worker collects every test);
    # what this run did not collect is collected as `make safety-case` would run it.
    unseen = missing(named, frozenset(item.nodeid for item in request.session.items))
    if unseen:
        unseen = missing(unseen, collected(tuple(sorted({n.partition("::")[0] for n in unseen}))))
    assert unseen == [], f"the hazard log names tests that do not exist: {unseen}"


def test_the_matrix_is_dcb0129s_5x5(log: HazardLog) -> None:
    matrix = log.matrix
    assert matrix.likelihoods == ("Very low", "Low", "Medium", "High", "Very high")
    assert matrix.severities == ("Minor", "Significant", "Considerable", "Major", "Catastrophic")
    assert matrix.ratings == DCB0129
    assert [level.name for level in matrix.rating_levels] == [
        "Very low",
        "Low",
        "Medium",
        "High",
        "Very high",
    ]


def test_residual_risk_is_never_above_initial_and_always_acceptable(log: HazardLog) -> None:
    matrix = log.matrix
    for hazard in log.hazards:
        initial, residual = hazard.initial, hazard.residual
        assert matrix.rating(residual) <= matrix.rating(initial), hazard.id
        # Controls make harm less likely or less severe, never more.
        assert matrix.likelihoods.index(residual.likelihood) <= matrix.likelihoods.index(
            initial.likelihood
        ), hazard.id
        assert matrix.severities.index(residual.severity) <= matrix.severities.index(
            initial.severity
        ), hazard.id
        # Ratings 4 and 5 are unacceptable: no release with such a residual risk.
        assert matrix.rating(residual) <= 3, hazard.id


def test_the_sign_off_fields_are_present_and_empty(log: HazardLog) -> None:
    assert set(log.sign_off) == {
        "clinical_safety_officer",
        "professional_registration",
        "date",
        "decision",
        "comments",
    }
    assert set(log.sign_off.values()) == {""}


def test_the_log_is_one_file_and_every_reference_names_it() -> None:
    assert [p.name for p in LOG.parent.glob("hazard*")] == ["hazard-log.toml"]
    for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("iris_prompt/**/*.py")]:
        assert "hazard-log.md" not in path.read_text(encoding="utf-8"), path


def test_the_reserved_areas_are_there_for_later_hazards(log: HazardLog) -> None:
    assert {"flag-register", "operations"} <= {area.id for area in log.areas}


# --- The machinery ----------------------------------------------------------------------------

SMALL_LOG = """
title = "t"
standard = "s"
intended_use = "use.md"
[sign_off]
date = ""
[matrix]
ratings = [[1, 1, 2, 2, 3], [1, 2, 2, 3, 4], [2, 2, 3, 3, 4], [2, 3, 3, 4, 5], [3, 4, 4, 5, 5]]
{levels}
[[area]]
id = "a"
title = "Area"
[[hazard]]
id = "H-1"
area = "a"
title = "A hazard"
topics = []
causes = ["c"]
effects = ["e"]
initial = {{ likelihood = "High", severity = "Major" }}
residual = {{ likelihood = "Low", severity = "Major" }}
[[hazard.controls]]
says = "proven"
tests = ["tests/test_x.py::test_passes", "tests/test_x.py::test_param"]
[[hazard.controls]]
says = "not proven"
tests = ["tests/test_x.py::test_fails"]
[[hazard.controls]]
says = "named wrongly"
tests = ["tests/test_x.py::test_renamed", "tests/test_gone.py::test_any"]
"""
LEVELS = "\n".join(
    f'[[matrix.{kind}]]\nname = "{name}"\nmeaning = "m"'
    for kind, names in (
        ("likelihood", ("Very low", "Low", "Medium", "High", "Very high")),
        ("severity", ("Minor", "Significant", "Considerable", "Major", "Catastrophic")),
    )
    for name in names
) + "".join(
    f'\n[[matrix.rating]]\nlevel = {n}\nname = "r{n}"\nacceptability = "a"' for n in range(1, 6)
)
TESTS = """
import pytest

def test_passes(pytestconfig):
    # The run reads the project's own configuration (its markers, its warnings as errors).
    assert "proof: a mark the project registers" in pytestconfig.getini("markers")

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n

def test_fails():
    assert False

def test_not_named():
    raise SystemExit("a test the log does not name must not run")
"""


def test_the_safety_case_runs_the_named_tests_and_shows_which_controls_ran_green(
    tmp_path: Path,
) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(TESTS, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    proof: a mark the project registers\n", encoding="utf-8"
    )
    (tmp_path / "use.md").write_text("For testing only.", encoding="utf-8")
    (tmp_path / "log.toml").write_text(SMALL_LOG.format(levels=LEVELS), encoding="utf-8")
    output = tmp_path / "out" / "case.md"

    status = main(["--root", str(tmp_path), "--log", "log.toml", "--output", str(output)])

    assert status == 1  # not every control is green
    report = output.read_text(encoding="utf-8")
    assert "| controls green in this run | 1 of 3 |" in report
    assert "2 passed, 1 failed, 0 skipped, 2 missing" in report
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.splitlines()}
    assert "| green |" in rows["proven"]
    assert "**RED**" in rows["not proven"] and "test_fails` **failed**" in rows["not proven"]
    assert "test_renamed` **missing**" in rows["named wrongly"]
    assert "test_gone.py::test_any` **missing**" in rows["named wrongly"]
    assert "For testing only." in report
    assert "- Date: ____" in report


def test_a_broken_log_names_each_problem() -> None:
    bad = SMALL_LOG.format(levels=LEVELS).replace('likelihood = "Low"', 'likelihood = "Rare"')
    bad = bad.replace('area = "a"', 'area = "nowhere"').replace('causes = ["c"]', "causes = []")
    with pytest.raises(HazardLogError) as raised:
        log_from_toml(tomllib.loads(bad))
    assert raised.value.problems == [
        "hazard H-1: causes must name at least one",
        "hazard H-1: residual likelihood 'Rare' is not on the matrix",
        "hazard H-1: area 'nowhere' is not an [[area]]",
    ]


def test_a_field_the_log_does_not_know_is_named_not_lost() -> None:
    """A deployment note put in a control's table, or a misspelt field, would otherwise vanish
    from the safety case without a word."""
    bad = SMALL_LOG.format(levels=LEVELS).replace(
        'says = "proven"\n', 'says = "proven"\ndeployment = ["in the wrong table"]\n'
    )
    bad = bad.replace('causes = ["c"]', 'causes = ["c"]\ncauzes = ["typo"]')
    with pytest.raises(HazardLogError) as raised:
        log_from_toml(tomllib.loads(bad))
    assert raised.value.problems == [
        "hazard H-1: unknown field 'cauzes'",
        "hazard H-1 control 1: unknown field 'deployment'",
    ]


def test_report_cells_cannot_break_the_table(log: HazardLog) -> None:
    report = render(log, Run({}, "now", "a | b"), "")
    assert "| commit | a \\| b |" in report
    assert "could not be read" in report
    # Nothing ran: no control can be green.
    assert f"| controls green in this run | 0 of {len(log.controls)} |" in report


def test_a_matrix_that_is_not_5x5_is_refused() -> None:
    small = SMALL_LOG.format(levels=LEVELS).replace("[3, 4, 4, 5, 5]]", "]")
    with pytest.raises(HazardLogError) as raised:
        log_from_toml(tomllib.loads(small))
    assert raised.value.problems == ["matrix: ratings must be 5 rows of 5 ratings from 1 to 5"]


def test_no_two_test_modules_share_a_name() -> None:
    """`make safety-case` collects the named files in one pytest, where two test modules of one
    name collide ("import file mismatch") and the controls they prove go red."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
