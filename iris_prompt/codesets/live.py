"""The code sets inside the running service: loaded once, swapped atomically on reload.

`CodeSetRegistry` holds the live `CodeSets`. A request reads `registry.current` once and uses
that snapshot throughout, so it never sees half of one version and half of another: a reload
checks the whole folder first and only then replaces the reference in a single assignment. A
folder that fails any check never replaces the live sets; the service keeps serving the old
version and reports the errors (log, admin endpoint, `status()`).

Publishing tip for deployments: make the new folder complete before reloading (for example
`git pull`, or switch a `codesets` symlink to a new release folder), then send SIGHUP or call the
admin endpoint (`codeset_admin.admin_router`).
"""

import datetime
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from iris_prompt.codesets.files import CodeSetCheck, check_folder
from iris_prompt.codesets.model import CodeSetError, CodeSets, Problem
from iris_prompt.template.codeset_check import check_recording_set

__all__ = [
    "SERVICE_CHECKS",
    "CodeSetRegistry",
    "ReloadResult",
    "describe_versions",
    "install_sighup_handler",
    "readiness",
]

log = logging.getLogger(__name__)

# What the service needs of otherwise valid sets, applied at start-up and on every reload (and by
# `iris-prompt codesets validate`): the recording template's codes, terms and categories.
SERVICE_CHECKS: tuple[CodeSetCheck, ...] = (check_recording_set,)


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of one reload: whether the new folder went live, and the problems found."""

    ok: bool
    versions: dict[str, str]
    problems: tuple[Problem, ...] = ()
    at: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "reloaded" if self.ok else "rejected",
            "versions": self.versions,
            "at": self.at.isoformat(),
            "problems": [{"severity": p.severity, "message": str(p)} for p in self.problems],
        }


class CodeSetRegistry:
    """The live code sets, loaded from `directory` at start-up (a bad folder stops start-up).

    `checks` are what the program needs of otherwise valid sets (the service passes
    `SERVICE_CHECKS`); they apply at start-up and on every reload, so a reload that would break
    the recording template is refused like any invalid set.
    """

    def __init__(
        self,
        directory: Path,
        *,
        today: Callable[[], datetime.date] = datetime.date.today,
        checks: Sequence[CodeSetCheck] = (),
    ) -> None:
        self.directory = directory
        self._today = today
        self._checks = tuple(checks)
        self._reload_lock = threading.Lock()
        report = check_folder(directory, today=today(), checks=self._checks)
        if report.codesets is None:
            raise CodeSetError(report.errors)
        for problem in report.problems:
            log.warning("code sets: %s", problem)
        self._current: CodeSets = report.codesets
        self.last_reload = ReloadResult(True, report.codesets.versions(), tuple(report.problems))
        log.info("code sets loaded from %s: %s", directory, describe_versions(report.codesets))

    @property
    def current(self) -> CodeSets:
        """The live sets. Read it once per request and keep the snapshot."""
        return self._current

    def reload(self) -> ReloadResult:
        """Check the folder again and, only if it passes, make it live. Never raises for bad
        files: the old sets stay live and the result lists the errors."""
        with self._reload_lock:
            try:
                report = check_folder(self.directory, today=self._today(), checks=self._checks)
            except Exception:  # a bug must not take the live sets down with it
                log.exception("code sets: reload failed unexpectedly; keeping the live version")
                problem = Problem(str(self.directory), "reload failed unexpectedly (see log)")
                result = ReloadResult(False, self._current.versions(), (problem,))
            else:
                if report.codesets is None:
                    result = ReloadResult(False, self._current.versions(), tuple(report.errors))
                    log.error(
                        "code sets: reload rejected, %d error(s); still serving %s",
                        len(report.errors),
                        describe_versions(self._current),
                    )
                    for problem in report.errors:
                        log.error("code sets: %s", problem)
                else:
                    self._current = report.codesets  # the atomic swap
                    result = ReloadResult(True, report.codesets.versions(), tuple(report.problems))
                    log.info("code sets reloaded: %s", describe_versions(report.codesets))
            self.last_reload = result
            return result

    def status(self) -> dict[str, Any]:
        """Live versions and the last reload's outcome, for operators."""
        return {
            "directory": str(self.directory),
            **self.last_reload.as_json(),
            "versions": self._current.versions(),
        }


def describe_versions(codesets: CodeSets) -> str:
    """One line for logs and the discovery description: "code sets: a 1.0.0, b 1.2.0"."""
    return "code sets: " + ", ".join(f"{key} {value}" for key, value in codesets.versions().items())


def readiness(registry: CodeSetRegistry) -> dict[str, Any]:
    """The code-set part of /readyz: live versions and whether the last reload went live."""
    return {
        "codesets": registry.current.versions(),
        "codesetsLastReload": "ok" if registry.last_reload.ok else "rejected",
    }


def install_sighup_handler(registry: CodeSetRegistry) -> Callable[[], None]:
    """Reload the code sets on SIGHUP; returns a function that restores the previous handler.

    The reload runs in its own thread, so the signal never blocks the event loop or waits on a
    lock the interrupted code might hold. Must be called from the main thread (a Python rule for
    signal handlers); elsewhere it logs a warning and does nothing.
    """

    def on_sighup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=registry.reload, name="codeset-reload", daemon=True).start()

    try:
        previous = signal.signal(signal.SIGHUP, on_sighup)
    except ValueError:
        log.warning("code sets: SIGHUP reload not installed (not the main thread)")
        return lambda: None

    def uninstall() -> None:
        signal.signal(signal.SIGHUP, previous)

    return uninstall
