"""The layers, checked by what importing a module really loads (`sys.modules` in a fresh
interpreter), so that a leak through any chain of imports is caught, not just a module's own.

- `cds_hooks` never loads `iris_prompt`;
- the protocol modules of `cds_hooks`, and the engine's pure modules (all but the household
  lookup and the service), load no web framework, HTTP client or event loop;
- the simulation never loads the web app; the settings load no domain module;
- the engine never loads the register (it is handed the register's reads as a function), and
  the register's profile check is pure;
- the command line loads no metrics library before `serve` says where several workers count,
  and a `serve` whose settings are refused says so before it loads the service;
- the store never imports operations code (read from its source, functions included);
- a test module never imports another: shared helpers live in support modules.
"""

import ast
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WEB = frozenset({"fastapi", "starlette", "httpx", "asyncio", "uvicorn"})
DOMAIN = (
    "iris_prompt.engine",
    "iris_prompt.template",
    "iris_prompt.simulate",
    "iris_prompt.codesets",
)

PROTOCOL = [
    "cds_hooks",
    "cds_hooks.models",
    "cds_hooks.request",
    "cds_hooks.response",
    "cds_hooks.errors",
    "cds_hooks.discovery",
    "cds_hooks.prefetch",
    "cds_hooks.feedback",
    "cds_hooks.json_body",
    "cds_hooks.replay",
    "cds_hooks.jws",
    "cds_hooks.logs",
    "cds_hooks.numbers",
    "cds_hooks.tracing",
]
PURE_ENGINE = [
    "iris_prompt.engine.fhir_values",
    "iris_prompt.engine.record",
    "iris_prompt.engine.risk_flags",
    "iris_prompt.engine.membership",
    "iris_prompt.engine.household",
    "iris_prompt.engine.household_plan",
    "iris_prompt.engine.rules",
    "iris_prompt.engine.card_text",
    "iris_prompt.engine.cards",
]
SIMULATE = [
    "iris_prompt.simulate.cli",
    "iris_prompt.simulate.run",
    "iris_prompt.simulate.report",
    "iris_prompt.simulate.html",
]
ALL_CDS_HOOKS = sorted(
    "cds_hooks" if p.stem == "__init__" else f"cds_hooks.{p.stem}"
    for p in (ROOT / "cds_hooks").glob("*.py")
)

PROBE = (
    "import importlib, json, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


@cache
def loaded_by(module: str) -> frozenset[str]:
    """The modules a fresh interpreter holds after importing `module` alone."""
    return frozenset(json.loads(probe(PROBE, module)))


def probe(code: str, *args: str, **env: str) -> str:
    """What a fresh interpreter running `code` prints, with only `env` of the IRIS_ settings."""
    # Not measured for coverage (`make test` measures every Python process it starts): the probe
    # only imports, and a coverage start-up per module would cost more than the import.
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("COVERAGE_", "IRIS_"))
    }
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def tops(modules: frozenset[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("module", ALL_CDS_HOOKS)
def test_cds_hooks_never_loads_iris_prompt(module: str) -> None:
    assert "iris_prompt" not in tops(loaded_by(module))


@pytest.mark.parametrize("module", PROTOCOL + PURE_ENGINE)
def test_protocol_and_engine_rules_load_no_web_framework_http_client_or_event_loop(
    module: str,
) -> None:
    assert tops(loaded_by(module)) & WEB == set()


@pytest.mark.parametrize("module", PURE_ENGINE)
def test_the_engine_rules_do_not_load_fhir_resources_validation(module: str) -> None:
    # Validating records whole is too slow for the service's budget (design.md).
    assert "fhir" not in tops(loaded_by(module))


@pytest.mark.parametrize("module", SIMULATE)
def test_the_simulation_never_loads_the_web_app(module: str) -> None:
    loaded = loaded_by(module)
    assert "iris_prompt.app" not in loaded and "cds_hooks.http" not in loaded
    assert tops(loaded) & {"fastapi", "starlette", "uvicorn"} == set()


def test_settings_load_no_domain_module() -> None:
    loaded = loaded_by("iris_prompt.settings")
    assert [name for name in loaded if name.startswith(DOMAIN)] == []


@pytest.mark.parametrize(
    "module", PURE_ENGINE + ["iris_prompt.engine.lookup", "iris_prompt.engine.household_check"]
)
def test_the_engine_never_loads_the_register(module: str) -> None:
    # The household check is given the register as a function (`lookup.RegisterSource`).
    assert [m for m in loaded_by(module) if m.startswith("iris_prompt.register")] == []


def test_the_registers_profile_loads_no_web_framework_http_client_or_event_loop() -> None:
    assert tops(loaded_by("iris_prompt.register.profile")) & WEB == set()


def test_the_web_framework_is_confined_to_the_http_module_of_cds_hooks() -> None:
    others = [m for m in ALL_CDS_HOOKS if m != "cds_hooks.http"]
    assert all(not tops(loaded_by(m)) & {"fastapi", "starlette"} for m in others)


def test_the_service_never_loads_the_safety_case_and_the_log_loads_no_web_framework() -> None:
    # The safety case runs pytest; it is a developer's tool, not part of the running service.
    assert [m for m in loaded_by("iris_prompt.app") if m.startswith("iris_prompt.safety")] == []
    assert tops(loaded_by("iris_prompt.safety.hazard_log")) & WEB == set()


def test_the_command_line_loads_no_metrics_before_serve_sets_their_folder() -> None:
    # prometheus-client fixes at import whether it counts per process or for several workers
    # (PROMETHEUS_MULTIPROC_DIR, which `serve` sets after the command line is loaded).
    assert "prometheus_client" not in tops(loaded_by("iris_prompt.cli"))


def test_the_command_line_loads_no_service_until_a_command_needs_it() -> None:
    """`iris-prompt --help` and `codesets validate` load the command line alone: no web
    framework, database toolkit, FHIR models or pydantic."""
    service = WEB | {"sqlalchemy", "alembic", "fhir", "pydantic", "redis", "opentelemetry"}
    assert tops(loaded_by("iris_prompt.cli")) & service == set()


REFUSED_SERVE = (
    "import json, sys\n"
    "from iris_prompt.cli import main\n"
    "status = main(['serve', '--workers', '2'])\n"
    "print(json.dumps([status, sorted(sys.modules)]))\n"
)


def test_a_refused_serve_says_so_before_it_loads_the_service(tmp_path: Path) -> None:
    """Two workers without a shared replay store are refused by the settings alone: neither the
    app, the store, the server nor the operations code is loaded, and nothing is made."""
    data = tmp_path / "data"
    issuers = '[{"iss": "https://ehr.example", "jku": ["https://ehr.example/jwks"]}]'
    out = probe(
        REFUSED_SERVE,
        IRIS_TRUSTED_ISSUERS=issuers,
        IRIS_PUBLIC_BASE_URL="https://iris.example.nhs.uk",
        IRIS_DATA_DIR=str(data),
    )
    status, modules = json.loads(out.splitlines()[-1])
    assert status == 2
    assert "pydantic_settings" in tops(frozenset(modules))  # the settings were read
    heavy = {"sqlalchemy", "alembic", "uvicorn", "fhir", "redis", "prometheus_client", "psycopg"}
    assert tops(frozenset(modules)) & heavy == set()
    service = ("iris_prompt.app", "iris_prompt.ops", "iris_prompt.store.database")
    assert [m for m in modules if m.startswith(service)] == []
    assert not data.exists()


def imported_by(paths: list[Path]) -> set[str]:
    """Every module these files import, read from their source (imports inside functions too).
    `from package import name` counts both the package and `package.name`, which may be a
    module; a relative import is resolved against the file's own package."""
    return {name for path in paths for name in _imports(path)}


def _imports(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_the_store_never_imports_operations_code_even_inside_a_function() -> None:
    """The store knows nothing of metrics or wiring: operations hook into it from outside
    (`iris_prompt.ops.wiring`). Read from the source, as an import made in a function only
    when it runs is invisible to what importing a module loads."""
    imported = imported_by(list((ROOT / "iris_prompt" / "store").rglob("*.py")))
    assert "sqlalchemy" in imported  # the walk reads the imports
    assert sorted(n for n in imported if n.startswith("iris_prompt.ops")) == []


def test_tests_share_helpers_through_support_modules_never_another_test_module() -> None:
    """What tests share lives in a support module: a helper kept in a test module ties other
    test files to it, so removing or reshaping that test breaks tests about something else."""
    tests = ROOT / "tests"
    imported = imported_by(list(tests.rglob("*.py")))
    assert "tests.conftest" in imported  # the walk reads the imports
    assert sorted(n for n in imported if n.rsplit(".", 1)[-1].startswith("test_")) == []
