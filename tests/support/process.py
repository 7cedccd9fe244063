"""Run `iris-prompt serve` as a real process, as `make serve` and deployments do.

The process's output is read as it is written (and copied to `serve.log`), so a test waits on
what the service says, "Uvicorn running on ..." when it listens, rather than polling it.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# What uvicorn logs once the socket is listening (after the app's start-up).
LISTENING = "Uvicorn running on"


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
    _lines: list[str] = field(default_factory=list)
    _ended: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(
        self, text: str, *, after: int = 0, timeout: float = 20.0, count: int = 1
    ) -> int:
        """Wait until `count` lines from the `after`-th on contain `text`; return how many lines
        the log held then (the `after` for the next wait). Fails if the process ends first."""

        def found_all() -> bool:
            return sum(text in line for line in self._lines[after:]) >= count

        with self._changed:
            self._changed.wait_for(lambda: self._ended or found_all(), timeout)
            found = found_all()
            assert found, f"the service never logged {text!r}:\n{self.log_text()}"
            return len(self._lines)

    def _copy(self, output: IO[bytes], log: IO[bytes]) -> None:
        for raw in output:
            log.write(raw)
            log.flush()
            with self._changed:
                self._lines.append(raw.decode("utf-8", errors="replace"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()


def _accepting(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Connect until the service accepts (no request is sent): with several workers uvicorn's
    supervisor logs LISTENING once it has bound the socket, and each worker calls listen() only
    after its own start-up, and no line says when that is; a service logging at WARNING says
    nothing at all."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except ConnectionRefusedError:
            assert process.poll() is None, f"the service exited ({process.returncode})"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# What uvicorn logs when another process took the free port between our choosing it and its
# binding it (the two workers of a run choose ports at the same time): chosen again.
BIND_FAILED = "address already in use"


@contextmanager
def serve_process(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[ServeProcess]:
    """`iris-prompt serve ARGS --port <free>` with only the given IRIS_ variables set, and
    IRIS_PUBLIC_BASE_URL (unless given) the address it is served at. Yields once it listens."""
    for attempt in range(3):
        with _serving(tmp_path, args, env) as running:
            if running is None and attempt < 2:
                continue  # the port was taken: start again on another
            assert running is not None, "every port chosen was taken before the service bound it"
            yield running
            return


@contextmanager
def _serving(
    tmp_path: Path, args: tuple[str, ...], env: Mapping[str, str] | None
) -> Iterator[ServeProcess | None]:
    """The service started on a free port and listening, or None if another process took that
    port first; stopped on exit."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    clean["IRIS_PUBLIC_BASE_URL"] = base_url
    clean["IRIS_DATA_DIR"] = str(tmp_path / "data")  # the embedded store, never the user's
    command = [sys.executable, "-m", "iris_prompt.cli", "serve", *args, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean | dict(env or {})
        )
        running = ServeProcess(base_url, process, log)
        assert process.stdout is not None
        copier = threading.Thread(target=running._copy, args=(process.stdout, out), daemon=True)
        copier.start()
        try:
            # uvicorn says it listens at INFO; a quieter service (the benchmarks run it at
            # WARNING) is ready when it accepts a connection.
            quiet = (env or {}).get("IRIS_LOG_LEVEL", "INFO").upper() not in ("DEBUG", "INFO")
            try:
                if not quiet:
                    running.wait_for_log(LISTENING)
                if quiet or "--workers" in args:
                    _accepting(port, process)
            except AssertionError:
                # Its output ended, or it exited (the one can come before the other): see why.
                if running._ended or process.poll() is not None:
                    process.wait(timeout=10)
                    copier.join(timeout=10)
                    if BIND_FAILED in running.log_text():
                        yield None
                        return
                raise
            yield running
        finally:
            process.terminate()
            process.wait(timeout=10)
            copier.join(timeout=10)
            process.stdout.close()
