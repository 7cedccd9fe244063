"""uvicorn's private worker `Process` still has the shape `iris_prompt.ops.workers.ReadyProcess`
relies on. ReadyProcess subclasses it and is put in its place in uvicorn's supervisor module;
uvicorn may change a private class in any release, and a change that the subclass silently
misses would bring back the hang it prevents (a replacement worker reporting a server that never
starts), in production, under load. pyproject.toml keeps uvicorn to one minor version; on an
upgrade these tests say what moved, before any worker is started.

Each check names what ReadyProcess uses: the supervisor making its workers from the module's
`Process` (so that swapping it takes effect), `Process(config, sockets)`, the `target` method
given to the child process and overridden here, and the `server` property, made lazily into
`_server`, that both `target` and the healthcheck's `pong` read."""

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.supervisors import multiprocess

from iris_prompt.ops.workers import ReadyProcess

UPGRADE = (
    f"uvicorn {uvicorn.__version__} changed its private worker Process: re-check "
    "iris_prompt.ops.workers.ReadyProcess (its docstring says why it exists) before widening "
    "the uvicorn range in pyproject.toml"
)


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def reads(function: Callable[..., Any], name: str) -> bool:
    """`function`'s own code names `name` (a global it loads or an attribute it reads)."""
    return name in function.__code__.co_names


@pytest.fixture
def made(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ReadyProcess, list[Callable[..., None]]]]:
    """A ReadyProcess made as the supervisor makes one, and the target it handed to the child
    process. uvicorn's own `get_subprocess` is replaced by a stand-in, said so: nothing is
    spawned."""
    given: list[Callable[..., None]] = []

    def get_subprocess(config: Any, target: Callable[..., None], sockets: Any) -> object:
        given.append(target)
        return object()

    monkeypatch.setattr(multiprocess, "get_subprocess", get_subprocess)
    config = uvicorn.Config("iris_prompt.app:create_app", factory=True)
    process = ReadyProcess(config, [])
    yield process, given
    process.parent_conn.close()
    process.child_conn.close()


def test_the_supervisor_makes_every_worker_from_the_module_s_process() -> None:
    """iris_prompt.ops.workers swaps `multiprocess.Process` for ReadyProcess: that reaches the
    workers only while the supervisor looks the name up in its module each time it makes one,
    at start, on a reload (SIGHUP), for a worker that died and for one added (SIGTTIN)."""
    assert inspect.isclass(multiprocess.Process), UPGRADE
    assert issubclass(ReadyProcess, multiprocess.Process)
    for method in ("init_processes", "restart_all", "keep_subprocess_alive", "handle_ttin"):
        assert reads(getattr(multiprocess.Multiprocess, method), "Process"), (method, UPGRADE)


def test_a_process_is_made_from_the_config_and_the_sockets() -> None:
    assert parameters(multiprocess.Process.__init__) == [
        ("self", inspect.Parameter.empty),
        ("config", inspect.Parameter.empty),
        ("sockets", inspect.Parameter.empty),
    ], UPGRADE


def test_the_child_process_runs_the_overridden_target(
    made: tuple[ReadyProcess, list[Callable[..., None]]],
) -> None:
    process, given = made
    assert given == [process.target], UPGRADE
    assert getattr(given[0], "__func__", None) is ReadyProcess.target
    # ReadyProcess.target takes and passes on what uvicorn's does.
    assert parameters(multiprocess.Process.target) == [
        ("self", inspect.Parameter.empty),
        ("sockets", None),
    ], UPGRADE
    assert parameters(ReadyProcess.target) == parameters(multiprocess.Process.target)
    assert "target" in vars(multiprocess.Process), UPGRADE  # overridden, not inherited


def test_the_server_is_a_lazy_property_that_target_and_the_healthcheck_read(
    made: tuple[ReadyProcess, list[Callable[..., None]]],
) -> None:
    """The race ReadyProcess closes: `target` (the worker's main thread) and `pong` (the thread
    answering the supervisor's healthcheck) both ask `server`, which makes a Server into
    `_server` on first use."""
    assert isinstance(inspect.getattr_static(multiprocess.Process, "server"), property), UPGRADE
    process, _ = made
    assert process._server is None, UPGRADE  # not made yet
    server = process.server
    assert isinstance(server, uvicorn.Server) and process._server is server, UPGRADE
    assert process.server is server, UPGRADE  # made once
    assert reads(multiprocess.Process.target, "server"), UPGRADE
    assert reads(multiprocess.Process.pong, "server"), UPGRADE
    assert reads(multiprocess.Process.target, "always_pong"), UPGRADE


def test_the_check_of_what_code_reads_catches_a_name_it_does_not_read() -> None:
    def makes_a_worker() -> object:
        return ReadyProcess

    assert reads(makes_a_worker, "ReadyProcess")
    assert not reads(makes_a_worker, "Process")
