"""Shared test fixtures.

The public reference material (CDS Hooks examples, sourced code lists, Synthea patients) lives
beside the project in ../shared/reference and is never copied into it. Tests that need it use the
`reference_dir` fixture, which skips with a clear message when it is absent.

`live_service` runs the real application (JWT checks on) under uvicorn with the protocol test
services; `fhir_server` runs a small real FHIR server. See DEVELOPERS.md.
"""

import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cds_hooks import ServiceRegistry
from cds_hooks.auth import TrustedIssuer
from iris_prompt.app import create_app
from iris_prompt.codesets.files import default_codesets_dir
from iris_prompt.codesets.live import SERVICE_CHECKS, CodeSetRegistry
from iris_prompt.engine.service import patient_view_service
from iris_prompt.settings import Settings
from iris_prompt.store.database import make_engine, upgrade
from tests.support.fhir_server import FhirTestServer
from tests.support.inprocess import BASE_URL, SyncClient, in_process
from tests.support.log_scan import RunLog, identifying_values, offending
from tests.support.postgres import PostgresCluster
from tests.support.redis import RedisServer
from tests.support.server import serve
from tests.support.services import protocol_test_services
from tests.support.tokens import SigningKey, claims, generate_key, jwks

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(
    os.environ.get("IRIS_REFERENCE_DIR", PROJECT_ROOT.parent / "shared" / "reference")
)
TEST_ISSUER = "https://ehr.test.example"
PATIENT_ID = "p1"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        pytest.skip(
            f"reference material not found at {REFERENCE_DIR}; set IRIS_REFERENCE_DIR to the "
            "shared/reference folder to run this test"
        )
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def es384_key() -> SigningKey:
    return generate_key("ES384")


@pytest.fixture(scope="session")
def rs384_key() -> SigningKey:
    return generate_key("RS384")


def make_settings(*keys: SigningKey, **overrides: Any) -> Settings:
    """Settings trusting TEST_ISSUER with `keys`, FHIR over http and on loopback allowed."""
    issuer = TrustedIssuer(iss=TEST_ISSUER, jwks=jwks(*keys))
    values: dict[str, Any] = {
        "trusted_issuers": [issuer],
        "fhir_allow_http": True,
        "fhir_allow_private_addresses": True,
    }
    return Settings(**(values | overrides))


@dataclass
class LiveService:
    """The real app, called in process (`client`) at `base_url`, its public base URL, with a
    trusted signing key to call it as a CDS client."""

    base_url: str
    app: FastAPI
    key: SigningKey
    client: SyncClient

    def token(self, path: str, **claim_overrides: Any) -> str:
        return self.key.sign(claims(TEST_ISSUER, self.base_url + path) | claim_overrides)

    def headers(self, path: str, **claim_overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(path, **claim_overrides)}"}

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = self.headers(path) if headers is None else headers
        if content is None:
            return self.client.post(path, json=body, headers=headers)
        return self.client.post(path, content=content, headers=headers)

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
        headers = self.headers(path) if headers is None else headers
        return self.client.get(path, headers=headers)


@functools.cache
def bundled_codesets() -> CodeSetRegistry:
    """The code sets bundled with the service, loaded once for the whole run."""
    return CodeSetRegistry(default_codesets_dir(), checks=SERVICE_CHECKS)


def make_registry() -> ServiceRegistry:
    return ServiceRegistry([patient_view_service(bundled_codesets()), *protocol_test_services()])


@pytest.fixture
def live_service(es384_key: SigningKey, rs384_key: SigningKey) -> Iterator[LiveService]:
    def build(base_url: str) -> FastAPI:
        settings = make_settings(
            es384_key,
            rs384_key,
            public_base_url=base_url,
            fhir_total_timeout_seconds=2.0,
            fhir_read_timeout_seconds=1.0,
        )
        return create_app(settings, registry=make_registry(), codesets=bundled_codesets())

    with live(build, es384_key) as service:
        yield service


@contextmanager
def live(build: Callable[[str], FastAPI], key: SigningKey) -> Iterator[LiveService]:
    """The app `build` makes for its public base URL, called in process."""
    app = build(BASE_URL)
    with in_process(app, BASE_URL) as client:
        yield LiveService(BASE_URL, app, key, client)


def sample_resources(patient_id: str = PATIENT_ID, conditions: int = 5) -> list[dict[str, Any]]:
    patient = {"resourceType": "Patient", "id": patient_id, "gender": "female"}
    found = [patient]
    for n in range(conditions):
        found.append(
            {
                "resourceType": "Condition",
                "id": f"c{n}",
                "subject": {"reference": f"Patient/{patient_id}"},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
            }
        )
    found.append(
        {
            "resourceType": "Group",
            "id": "household",
            "type": "person",
            "actual": True,
            "member": [
                {"entity": {"reference": f"Patient/{patient_id}"}},
                {"entity": {"reference": "Patient/p2"}},
            ],
        }
    )
    found.append(
        {
            "resourceType": "Flag",
            "id": "f1",
            "status": "active",
            "subject": {"reference": "Patient/p2"},
            "code": {"text": "test flag"},
        }
    )
    return found


@dataclass
class RunningFhir:
    server: FhirTestServer
    base_url: str


@pytest.fixture
def fhir_server() -> Iterator[RunningFhir]:
    server = FhirTestServer(sample_resources(), page_size=2)
    with serve(server.app, access_log=False) as base_url:
        yield RunningFhir(server, base_url)


HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
ACCESS_TOKEN = "fhir-access-token-7f3a9c"


def patient_view(
    *,
    prefetch: dict[str, Any] | None = None,
    fhir_server: str | None = None,
    user: str = "Practitioner/u1",
    **extra: Any,
) -> dict[str, Any]:
    """A patient-view request body for PATIENT_ID; with `fhir_server`, a bearer token too."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": HOOK_INSTANCE,
        "context": {"userId": user, "patientId": PATIENT_ID},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "iris-prompt",
        }
    return body | extra


@pytest.fixture(scope="session", autouse=True)
def _data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every app the tests build keeps its embedded store in a folder of this run, never in the
    user's data directory."""
    folder = tmp_path_factory.mktemp("iris-data")
    previous = os.environ.get("IRIS_DATA_DIR")
    os.environ["IRIS_DATA_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("IRIS_DATA_DIR", None)
    else:
        os.environ["IRIS_DATA_DIR"] = previous


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A real PostgreSQL cluster for the whole run (started on first use, stopped at the end)."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis for the whole run (started on first use on a free port, stopped at the end).
    Tests that stop it start it again before they finish."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The run's Redis, emptied for this test."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


def new_database(request: pytest.FixtureRequest, kind: str, folder: Path) -> str:
    """A fresh, empty database: SQLite in `folder`, or one of the run's PostgreSQL cluster."""
    if kind == "sqlite":
        return f"sqlite+pysqlite:///{folder / 'store.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.new_database()
    request.addfinalizer(lambda: cluster.give_back(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each engine the store supports."""
    return new_database(request, request.param, tmp_path)


def upgraded(url: str) -> None:
    """Apply the store's migrations to the database at `url`."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded store migrated once for the run (in each worker), for tests to copy."""
    path = tmp_path_factory.mktemp("sqlite-at-head") / "store.sqlite3"
    upgraded(f"sqlite+pysqlite:///{path}")
    return path


def migrated_database(request: pytest.FixtureRequest, kind: str, folder: Path) -> str:
    """A database at the head of the store's migrations, with every table empty: SQLite in
    `folder`, copied from `sqlite_at_head`, or one of the run's PostgreSQL cluster, kept
    migrated between tests. Migrating each test's database again cost a tenth of the
    in-process tests' time under coverage; the migrations' own tests use `database_url`."""
    if kind == "sqlite":
        target = folder / "store.sqlite3"
        template: Path = request.getfixturevalue("sqlite_at_head")
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
        return f"sqlite+pysqlite:///{target}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.new_migrated_database(upgraded)
    request.addfinalizer(lambda: cluster.give_back_migrated(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of each engine the store supports, at the head of its migrations and empty."""
    return migrated_database(request, request.param, tmp_path)


RUN_LOG = RunLog()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked `slow` first, in collection order otherwise (the sort is stable).

    `make test` hands each worker a whole module at a time, in this order, as it becomes free
    (`--dist loadfile --no-loadscope-reorder`): a module's processes (a served service, a
    browser, the SMART launcher) start in one worker only, and with the slow modules handed out
    first the quick ones fill the gaps at the end, so the two workers finish together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config: pytest.Config) -> None:
    # At the service's default level (IRIS_LOG_LEVEL=INFO), so that the lines scanned are the
    # lines production writes, not only the warnings.
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(RUN_LOG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log line of it holds a token, a JWT, an NHS number or a name."""
    logging.getLogger().removeHandler(RUN_LOG)
    secrets = identifying_values() | {ACCESS_TOKEN}
    bad = offending(RUN_LOG.lines, secrets)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if bad:
        if reporter is not None:
            reporter.write_line(
                f"{len(bad)} of {len(RUN_LOG.lines)} log lines hold a token, "
                "a JWT, an NHS number or a name:",
                red=True,
            )
            for line in bad[:20]:
                reporter.write_line("  " + line[:300])
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and RUN_LOG.lines:
        reporter.write_line(
            f"log scan: {len(RUN_LOG.lines)} log lines, none holds a token, "
            "a JWT, an NHS number or a name"
        )
