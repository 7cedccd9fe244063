"""Code-set reload in the running service (`iris-prompt serve`): SIGHUP and the admin endpoint.

A lead's published change goes live without a restart; a broken edit never does, and the service
keeps serving, and showing, the version it had.
"""

import re
import shutil
import signal
from pathlib import Path

import pytest

from iris_prompt.codesets.files import default_codesets_dir
from iris_prompt.engine.service import SERVICE_ID
from tests.support import web
from tests.support.process import serve_process

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "a-long-admin-token-for-tests"


def trigger_version(base: str) -> str:
    version: str = web.get(base + "/readyz").json()["codesets"]["iris-prompt-trigger"]
    return version


def description(base: str) -> str:
    [service] = [
        s for s in web.get(base + "/cds-services").json()["services"] if s["hook"] == "patient-view"
    ]
    assert service["id"] == SERVICE_ID
    text: str = service["description"]
    return text


def test_sighup_and_admin_reload_publish_good_edits_and_refuse_broken_ones(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "codesets"
    shutil.copytree(default_codesets_dir(), folder)
    manifest = folder / "trigger.toml"
    old = re.sub(r'(?m)^version = ".*"$', 'version = "1.0.0"', manifest.read_text("utf-8"))
    manifest.write_text(old, encoding="utf-8")
    env = {"IRIS_CODESETS_DIR": str(folder), "IRIS_ADMIN_TOKEN": ADMIN_TOKEN}
    with serve_process(tmp_path, "--local", env=env) as served:
        base = served.base_url
        assert trigger_version(base) == "1.0.0"
        assert "iris-prompt-trigger 1.0.0" in description(base)

        # A good edit, published with SIGHUP.
        manifest.write_text(old.replace('version = "1.0.0"', 'version = "1.0.1"'), "utf-8")
        served.process.send_signal(signal.SIGHUP)
        # The reload runs in a thread of the service; it logs when the new sets are live.
        served.wait_for_log("code sets reloaded: code sets: iris-prompt-trigger 1.0.1")
        assert trigger_version(base) == "1.0.1"
        assert "iris-prompt-trigger 1.0.1" in description(base)

        # A broken edit, through the admin endpoint: refused, the live set stays.
        with (folder / "trigger.csv").open("a", encoding="utf-8") as members:
            members.write("SNOMED CT,35489008,Depressive disorder,depression,a source,\n")
        manifest.write_text(old.replace('version = "1.0.0"', 'version = "1.0.2"'), "utf-8")
        url = base + "/admin/codesets/reload"
        assert web.post(url).status_code == 401
        refused = web.post(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert refused.status_code == 422
        assert any("check digit" in p["message"] for p in refused.json()["problems"])
        ready = web.get(base + "/readyz").json()
        assert ready["codesets"]["iris-prompt-trigger"] == "1.0.1"
        assert ready["codesetsLastReload"] == "rejected"
        assert "iris-prompt-trigger 1.0.1" in description(base)
