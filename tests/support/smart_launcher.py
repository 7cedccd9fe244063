"""The SMART on FHIR project's own EHR simulator (smart-launcher-v2), as a real SMART client.

It lives beside the project (`../shared/tools/smart-launcher-v2`, or `IRIS_SMART_LAUNCHER_SRC`)
and is never copied into the repository: `installed()` copies it once to a cache folder outside
the repository (`~/.cache/iris-prompt/smart-launcher-<commit>`, or `$XDG_CACHE_HOME`) and runs
`npm ci` there (about a minute, once per machine). `running(fhir_base_url)` starts it on a free
loopback port in front of a FHIR server, waits for the line it prints when it listens, yields
its base URL and stops it by its process id. Node 20 and npm are needed.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMIT = "64374254347fdfa9625f9112c77813aa75fa9f3e"
SOURCE = Path(
    os.environ.get(
        "IRIS_SMART_LAUNCHER_SRC", PROJECT_ROOT.parent / "shared" / "tools" / "smart-launcher-v2"
    )
)
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iris-prompt"
READY = "SMART launcher available at"
START_TIMEOUT = 120.0
INSTALL_TIMEOUT = 900.0


def installed() -> Path:
    """The launcher's cache folder with its node modules installed."""
    target = CACHE / f"smart-launcher-{COMMIT[:7]}"
    # npm ci writes this file last: its presence means a complete install.
    if (target / "node_modules" / ".package-lock.json").exists():
        return target
    if not SOURCE.is_dir():
        pytest.skip(
            f"SMART launcher not found at {SOURCE}; set IRIS_SMART_LAUNCHER_SRC to a copy of "
            "smart-launcher-v2"
        )
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} (Node 20) is needed to run the SMART launcher")
    scratch = CACHE / f"smart-launcher-{COMMIT[:7]}.{os.getpid()}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(SOURCE, scratch, ignore=shutil.ignore_patterns("node_modules", ".git"))
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=scratch,
        check=True,
        timeout=INSTALL_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )
    try:
        scratch.rename(target)  # another run may have finished first: keep its copy
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(fhir_base_url: str) -> Iterator[str]:
    """The launcher on a free loopback port in front of `fhir_base_url`; yields its base URL."""
    folder = installed()
    port = _free_port()
    env = {
        **os.environ,
        "SOURCE_VERSION": "local",
        "NODE_ENV": "production",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "FHIR_SERVER_R4": fhir_base_url,
        "FHIR_SERVER_R3": "",
        "FHIR_SERVER_R2": "",
    }
    command = [
        str(folder / "node_modules" / ".bin" / "ts-node"),
        "--skipProject",
        "--transpile-only",
        "backend/index.ts",
    ]
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()

    def drain() -> None:  # read its output to the end, so that it never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            if READY in line:
                ready.set()
        ready.set()  # it exited: stop waiting

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not ready.wait(START_TIMEOUT) or process.poll() is not None:
            pytest.fail("the SMART launcher did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(5)
        if process.stdout is not None:
            process.stdout.close()


def fhir_base(launcher: str) -> str:
    """The launcher's FHIR base URL (the `iss` of its launches)."""
    return f"{launcher}/v/r4/fhir"


def ehr_launch_url(launcher: str, app_launch_url: str, *, patient: str, provider: str) -> str:
    """The launcher's headless EHR launch: it answers 302 to the app with `iss` and `launch`."""
    query = urlencode(
        {"launch_uri": app_launch_url, "fhir_ver": "4", "patient": patient, "provider": provider}
    )
    return f"{launcher}/launcher?{query}"
