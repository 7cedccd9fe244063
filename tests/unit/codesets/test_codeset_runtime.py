"""Code sets in the running service: atomic reload under concurrent use, SIGHUP, the admin
endpoints on a real HTTP server, and what /readyz reports."""

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI

from iris_prompt.app import create_app
from iris_prompt.codesets.admin import admin_router
from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.codesets.files import CodeSetError, CodeSets, default_codesets_dir
from iris_prompt.codesets.live import (
    SERVICE_CHECKS,
    CodeSetRegistry,
    ReloadResult,
    describe_versions,
    install_sighup_handler,
    readiness,
)
from iris_prompt.settings import Settings
from tests.support import web
from tests.support.server import serve

NEW_CODE = "25501002"  # Social phobia: only in release B
TOKEN = "test-admin-token-0123456789"


def pin_version(manifest: Path, version: str) -> None:
    """Give a copied set a known version, whatever the bundled one is."""
    text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', manifest.read_text("utf-8"))
    manifest.write_text(text, encoding="utf-8")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def releases(tmp_path: Path) -> dict[str, Path]:
    """Three release folders: A (bundled), B (all sets 1.1.0, one more trigger), C (broken)."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for target, version in ((a, "1.0.0"), (b, "1.1.0"), (c, "1.0.0")):
        shutil.copytree(default_codesets_dir(), target)
        for name in ("trigger", "recording", "known-abuse"):
            pin_version(target / f"{name}.toml", version)
    source = "opensafely/lockdown-and-vulnerable-groups codelists/"
    source += "user-hjforbes-anxiety-symptoms-and-diagnoses.csv @a7bd5e7e"
    with (b / "trigger.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"SNOMED CT,{NEW_CODE},Social phobia,anxiety,{source},\n")
    edit(c / "trigger.toml", 'version = "1.0.0"', 'version = "9.9.9"')
    edit(c / "trigger.csv", "SNOMED CT,35489007,", "SNOMED CT,35489008,")  # a typo
    return {"A": a, "B": b, "C": c}


def point(link: Path, target: Path) -> None:
    """Switch a `codesets` symlink to another release in one atomic rename."""
    temporary = link.with_name(link.name + ".new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, link)


@pytest.fixture
def live(tmp_path: Path, releases: dict[str, Path]) -> Path:
    link = tmp_path / "codesets"
    point(link, releases["A"])
    return link


def consistent(snapshot: CodeSets) -> str:
    """The version a snapshot belongs to; fails if it mixes two."""
    versions = set(snapshot.versions().values())
    assert len(versions) == 1, f"half-loaded: {snapshot.versions()}"
    version = versions.pop()
    has_new_code = snapshot.trigger.lookup(SNOMED_CT, NEW_CODE) is not None
    assert has_new_code == (version == "1.1.0"), f"{version} with new code {has_new_code}"
    return version


def test_registry_loads_and_reloads(live: Path, releases: dict[str, Path]) -> None:
    registry = CodeSetRegistry(live)
    assert consistent(registry.current) == "1.0.0"
    point(live, releases["B"])
    result = registry.reload()
    assert result.ok and result.versions["iris-prompt-trigger"] == "1.1.0"
    assert consistent(registry.current) == "1.1.0"
    assert readiness(registry)["codesetsLastReload"] == "ok"


def test_a_broken_edit_leaves_the_old_set_live(live: Path, releases: dict[str, Path]) -> None:
    registry = CodeSetRegistry(live)
    before = registry.current
    point(live, releases["C"])
    result = registry.reload()
    assert not result.ok
    assert registry.current is before
    assert result.versions == before.versions()
    assert any("check digit" in str(p) for p in result.problems)
    assert readiness(registry) == {
        "codesets": before.versions(),
        "codesetsLastReload": "rejected",
    }
    status = registry.status()
    assert status["status"] == "rejected" and status["versions"] == before.versions()


def test_start_up_with_a_broken_folder_fails_fast(releases: dict[str, Path]) -> None:
    with pytest.raises(CodeSetError, match="check digit"):
        CodeSetRegistry(releases["C"])


def test_a_local_set_with_a_setting_that_does_nothing_still_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """min_entries on a known-abuse category does nothing (the service counts one entry). A
    local folder with it loaded before that was checked: refusing it now would stop the service
    starting after an upgrade, and every prompt with it. It starts, and says so in the log."""
    folder = tmp_path / "codesets"
    shutil.copytree(default_codesets_dir(), folder)
    edit(
        folder / "known-abuse.toml",
        "[categories.victim]\n",
        "[categories.victim]\nmin_entries = 2\n",
    )
    with caplog.at_level("WARNING", logger="iris_prompt.codesets.live"):
        registry = CodeSetRegistry(folder, checks=SERVICE_CHECKS)
    assert registry.current.known_abuse.categories["victim"].min_entries == 2
    (warned,) = [r.getMessage() for r in caplog.records if "min_entries" in r.getMessage()]
    assert "category 'victim': min_entries counts only in the trigger set" in warned


def break_the_template(folder: Path) -> None:
    """A valid-looking edit the template cannot live with: a code it writes, deleted."""
    path = folder / "recording.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if ",887331000000105," not in line), "utf-8")


def test_a_reload_that_would_break_the_template_is_refused(
    live: Path, releases: dict[str, Path]
) -> None:
    registry = CodeSetRegistry(live, checks=SERVICE_CHECKS)
    before = registry.current
    break_the_template(releases["B"])
    point(live, releases["B"])
    result = registry.reload()
    assert not result.ok and registry.current is before
    (problem,) = result.problems
    assert "887331000000105" in str(problem) and "put its row back" in str(problem)
    assert readiness(registry)["codesetsLastReload"] == "rejected"


def test_the_service_will_not_start_on_sets_that_break_the_template(tmp_path: Path) -> None:
    folder = tmp_path / "codesets"
    shutil.copytree(default_codesets_dir(), folder)
    break_the_template(folder)
    with pytest.raises(CodeSetError, match="887331000000105"):
        create_app(Settings(local_mode=True, codesets_dir=folder))


def test_reload_under_concurrent_readers_never_serves_a_half_loaded_set(
    live: Path, releases: dict[str, Path]
) -> None:
    registry = CodeSetRegistry(live)
    stop = threading.Event()
    seen: dict[str, int] = {}
    failures: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                version = consistent(registry.current)
            except BaseException as error:  # report in the main thread
                failures.append(error)
                return
            seen[version] = seen.get(version, 0) + 1
            time.sleep(0.0002)  # a request does other work too; do not starve the reload

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    outcomes = []
    for release in ["B", "C", "A", "C", "B", "A"] * 3:
        point(live, releases[release])
        outcomes.append((release, registry.reload().ok))
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []
    assert {ok for release, ok in outcomes if release == "C"} == {False}
    assert {ok for release, ok in outcomes if release != "C"} == {True}
    assert set(seen) == {"1.0.0", "1.1.0"}  # 9.9.9 (broken) was never served


class ObservedRegistry(CodeSetRegistry):
    """The registry, telling the test when a reload has finished (the SIGHUP handler runs it in
    a thread of its own)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.reloaded = threading.Event()

    def reload(self) -> ReloadResult:
        result = super().reload()
        self.reloaded.set()
        return result


def test_sighup_reloads(live: Path, releases: dict[str, Path]) -> None:
    registry = ObservedRegistry(live)
    previous = signal.getsignal(signal.SIGHUP)
    uninstall = install_sighup_handler(registry)
    try:
        point(live, releases["B"])
        os.kill(os.getpid(), signal.SIGHUP)
        assert registry.reloaded.wait(timeout=10), "SIGHUP did not reload the code sets"
        assert registry.last_reload.ok
        assert consistent(registry.current) == "1.1.0"
    finally:
        uninstall()
    assert signal.getsignal(signal.SIGHUP) == previous


def test_sighup_handler_outside_the_main_thread_is_a_logged_no_op(live: Path) -> None:
    registry = CodeSetRegistry(live)
    uninstallers = []
    thread = threading.Thread(target=lambda: uninstallers.append(install_sighup_handler(registry)))
    thread.start()
    thread.join()
    uninstallers[0]()  # does nothing, raises nothing


def test_describe_versions(live: Path) -> None:
    registry = CodeSetRegistry(live)
    assert describe_versions(registry.current) == (
        "code sets: iris-prompt-trigger 1.0.0, iris-prompt-recording 1.0.0, "
        "iris-prompt-known-abuse 1.0.0"
    )


def test_admin_router_refuses_a_weak_token(live: Path) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        admin_router(CodeSetRegistry(live), "short")


# --- through HTTP ----------------------------------------------------------------------------
def tiny_app(registry: CodeSetRegistry) -> FastAPI:
    """A stand-in for the service: one endpoint that uses a snapshot, plus the admin router."""
    app = FastAPI()
    app.include_router(admin_router(registry, TOKEN))

    @app.get("/probe")
    def probe() -> dict[str, object]:
        snapshot = registry.current  # once per request, as the service does
        time.sleep(0.001)  # let a reload land mid-request
        return {
            "versions": snapshot.versions(),
            "newCode": snapshot.trigger.lookup(SNOMED_CT, NEW_CODE) is not None,
        }

    return app


def test_admin_endpoints_need_the_token(live: Path) -> None:
    registry = CodeSetRegistry(live)
    started = registry.last_reload
    with serve(tiny_app(registry)) as base, web.Client(base_url=base) as client:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ):
            response = client.post("/admin/codesets/reload", headers=headers)
            assert (response.status_code, response.content) == (401, b"")
            assert response.headers["www-authenticate"] == "Bearer"
            assert client.get("/admin/codesets", headers=headers).status_code == 401
        assert registry.last_reload is started  # no reload was attempted
        good = {"Authorization": f"Bearer {TOKEN}"}
        status = client.get("/admin/codesets", headers=good).json()
        assert status["versions"]["iris-prompt-trigger"] == "1.0.0"


def test_reload_over_http_under_concurrent_requests(live: Path, releases: dict[str, Path]) -> None:
    registry = CodeSetRegistry(live)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    stop = threading.Event()
    answers: list[dict] = []

    with serve(tiny_app(registry)) as base:

        def client_loop() -> None:
            with web.Client(base_url=base) as client:
                while not stop.is_set():
                    answers.append(client.get("/probe").json())

        clients = [threading.Thread(target=client_loop) for _ in range(4)]
        for thread in clients:
            thread.start()
        with web.Client(base_url=base) as admin:
            for release in ["B", "C", "A", "C", "B"]:
                point(live, releases[release])
                response = admin.post("/admin/codesets/reload", headers=auth)
                body = response.json()
                if release == "C":
                    assert response.status_code == 422 and body["status"] == "rejected"
                    assert any("check digit" in p["message"] for p in body["problems"])
                    assert body["versions"]["iris-prompt-trigger"] != "9.9.9"
                else:
                    assert response.status_code == 200 and body["status"] == "reloaded"
                time.sleep(0.05)
        stop.set()
        for thread in clients:
            thread.join()
    assert len(answers) > 20
    for answer in answers:
        versions = set(answer["versions"].values())
        assert len(versions) == 1, answer
        assert answer["newCode"] == (versions == {"1.1.0"}), answer
    assert {v for a in answers for v in a["versions"].values()} <= {"1.0.0", "1.1.0"}
    assert registry.current.versions()["iris-prompt-trigger"] == "1.1.0"
