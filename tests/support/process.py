"""Run `iris-prompt serve` as a real process, as `make serve` and deployments do."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve_process(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[ServeProcess]:
    """`iris-prompt serve ARGS --port <free>` with only the given IRIS_ variables set, and
    IRIS_PUBLIC_BASE_URL (unless given) the address it is served at."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    clean["IRIS_PUBLIC_BASE_URL"] = base_url
    clean["IRIS_DATA_DIR"] = str(tmp_path / "data")  # the embedded store, never the user's
    command = [sys.executable, "-m", "iris_prompt.cli", "serve", *args, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=clean | dict(env or {})
        )
        running = ServeProcess(base_url, process, log)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(running.base_url + "/healthz")
                    break
                except httpx.TransportError:
                    alive = process.poll() is None and time.monotonic() < deadline
                    assert alive, running.log_text()
                    time.sleep(0.1)
            yield running
        finally:
            process.terminate()
            process.wait(timeout=10)
