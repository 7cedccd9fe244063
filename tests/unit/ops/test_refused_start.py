"""`iris-prompt serve` refused for a file or a port it cannot use: the setting is named in one
line, with no traceback and nothing of the file, and no embedded store is made.

The refusals come while the app is built, in this process; uvicorn's serving loop is replaced
by a failure so that a start not refused fails the test instead of serving for ever, and the
service's logging configuration is not installed (its handlers would outlive the captured
stream of this test and fail every later test's logging).
"""

import logging.config
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from iris_prompt.cli import main


@pytest.fixture
def data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import uvicorn

    def served(*_args: object, **_kwargs: object) -> None:
        pytest.fail("serve started: the start was not refused")

    monkeypatch.setattr(uvicorn, "run", served)
    monkeypatch.setattr(logging.config, "dictConfig", lambda _config: None)
    for name in [name for name in os.environ if name.startswith("IRIS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IRIS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("iris-prompt: cannot start: ") and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_a_trusted_clients_unreadable_key_file(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = data.parent / "ehr-jwks.json"
    issuer = f'[{{"iss": "https://ehr.example", "jwks_file": "{keys}"}}]'
    monkeypatch.setenv("IRIS_TRUSTED_ISSUERS", issuer)
    monkeypatch.setenv("IRIS_PUBLIC_BASE_URL", "https://iris.example.nhs.uk")
    assert "cannot read JWK Set file" in refused(capsys)
    assert not data.exists()


def test_an_unreadable_smart_private_key(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = data.parent / "smart-key.json"
    monkeypatch.setenv("IRIS_SMART_CLIENT_ID", "iris-template")
    monkeypatch.setenv("IRIS_SMART_PRIVATE_KEY_FILE", str(key))
    monkeypatch.setenv("IRIS_SMART_ISSUERS", '["https://ehr.example/fhir"]')
    said = refused(capsys, "--local")
    assert said.endswith("IRIS_SMART_PRIVATE_KEY_FILE cannot be read: No such file or directory")
    # A file that is not a JWK: the parser's text, which may quote the key, is not repeated.
    key.write_text('{"kty": "EC", "d": "s3cret-d"', encoding="utf-8")
    said = refused(capsys, "--local")
    assert said.endswith("IRIS_SMART_PRIVATE_KEY_FILE cannot be read: JSONDecodeError")
    assert not data.exists()


def test_a_metrics_port_in_use(
    data: Path,
    port_in_use: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IRIS_METRICS_PORT", str(port_in_use))
    said = refused(capsys, "--local")
    assert said.endswith(
        f"IRIS_METRICS_PORT {port_in_use} cannot be served: Address already in use"
    )
    assert not data.exists()


def test_an_unusable_redis_option(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRIS_REDIS_URL", "redis://127.0.0.1:1/0?socket_timeout=abc")
    assert "socket_timeout" in refused(capsys, "--local")
    assert not data.exists()
