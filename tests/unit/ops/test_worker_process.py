"""A worker's uvicorn `Server` exists before the thread answering the supervisor's healthcheck
starts, so that thread reports the server the worker runs (iris_prompt.ops.workers.ReadyProcess).
Without it, a replacement worker could report a server that never starts, and a code-set reload
would keep an old worker (tests/api/test_workers.py reloads through real workers)."""

import threading
from typing import Any

import pytest
import uvicorn

from iris_prompt.ops.workers import ReadyProcess


def test_the_server_is_made_before_the_healthcheck_thread_and_is_the_one_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stand-ins, said so: no thread is started and no server run; the test records the order.
    process = ReadyProcess(uvicorn.Config("iris_prompt.app:create_app", factory=True), [])
    seen: list[str] = []

    def start(thread: threading.Thread) -> None:
        seen.append("healthcheck thread, server made" if process._server else "thread, none")

    def run(server: uvicorn.Server, sockets: Any = None) -> None:
        seen.append("the healthcheck's server run" if server is process._server else "another")

    monkeypatch.setattr(threading.Thread, "start", start)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    process.target([])
    assert seen == ["healthcheck thread, server made", "the healthcheck's server run"]
