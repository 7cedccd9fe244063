"""`iris-prompt serve --local` (what `make serve` runs) serves the product's service id."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from iris_prompt.engine.service import ENCOUNTER_START_SERVICE_ID, SERVICE_ID
from tests.conftest import patient_view
from tests.support import web
from tests.support.process import free_port, serve_process

pytestmark = pytest.mark.slow


def test_serve_local_answers_discovery_and_the_product_service(tmp_path: Path) -> None:
    with serve_process(tmp_path, "--local") as served:
        base = served.base_url
        discovery = web.get(base + "/cds-services").json()
        assert [(s["id"], s["hook"]) for s in discovery["services"]] == [
            (SERVICE_ID, "patient-view"),
            (ENCOUNTER_START_SERVICE_ID, "encounter-start"),
        ]
        prefetch = {
            "patient": {"resourceType": "Patient", "id": "p1"},
            "conditions": None,
            "observations": None,
        }
        answer = web.post(f"{base}/cds-services/{SERVICE_ID}", json=patient_view(prefetch=prefetch))
        assert answer.status_code == 200 and answer.json() == {"cards": []}
    assert "LOCAL MODE: CDS clients are NOT authenticated" in served.log_text()


def test_local_mode_is_refused_off_loopback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "iris_prompt.cli", "serve", "--local", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "local mode (no caller authentication) is refused on 0.0.0.0" in result.stderr


def test_serving_without_trusted_clients_is_refused() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    result = subprocess.run(
        [sys.executable, "-m", "iris_prompt.cli", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2
    assert "no trusted CDS clients: set IRIS_TRUSTED_ISSUERS" in result.stderr


def test_a_plain_http_public_base_is_refused_at_start_up(tmp_path: Path) -> None:
    """CDS Hooks requires TLS: outside local mode the service will not publish an http URL
    (other than loopback), and says why."""
    issuers = '[{"iss": "https://ehr.example", "jku": ["https://ehr.example/jwks"]}]'
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")} | {
        "IRIS_TRUSTED_ISSUERS": issuers,
        "IRIS_PUBLIC_BASE_URL": "http://iris.example.nhs.uk",
        "IRIS_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "iris_prompt.cli", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2
    assert "IRIS_PUBLIC_BASE_URL must be https:// outside local mode" in result.stderr
    assert "CDS Hooks requires TLS" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_port_taken_before_the_service_binds_it_is_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test harness's own guard: a free port can be taken by another process of the run
    before the service binds it; the service is then started again on another."""
    from tests.support import process

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(process, "free_port", lambda: next(ports, free_port()))
        with serve_process(tmp_path, "--local") as served:
            assert served.base_url != f"http://127.0.0.1:{taken.getsockname()[1]}"
            assert web.get(served.base_url + "/cds-services").status_code == 200
