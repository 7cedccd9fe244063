"""The service killed with SIGKILL in the middle of writes: every feedback item it acknowledged
and every MAPPA disclosure it returned is in the store afterwards, and the database is sound."""

import os
import signal
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from iris_prompt.store.database import SQLITE_FILE
from tests.api.engine_support import SERVICE_PATH, fhir_with, patient_id_of, record, request_body
from tests.api.engine_support import prefetch_for as prefetch_of
from tests.support import web
from tests.support.process import serve_process

pytestmark = pytest.mark.slow

ACKNOWLEDGED_BEFORE_KILL = 40


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acknowledged: list[str] = []
    disclosed: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    resources = record("seed-case")
    pid = patient_id_of(resources)
    with fhir_with("seed-case") as fhir, serve_process(tmp_path, "--local") as served:
        client = web.Client(base_url=served.base_url, timeout=10)
        body = request_body(pid, prefetch=prefetch_of(resources, pid), fhir_server=fhir.url)

        def send_feedback(_n: int) -> None:
            card = str(uuid.uuid4())
            item = {
                "card": card,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
                "overrideReason": {"userComment": "not now"},
            }
            try:
                answer = client.post(SERVICE_PATH + "/feedback", json={"feedback": [item]})
            except httpx.TransportError:
                return
            if answer.status_code == 200:
                with lock:
                    acknowledged.append(card)
                    if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                        enough.set()

        def send_call(_n: int) -> None:
            try:
                answer = client.post(SERVICE_PATH, json=body)
            except httpx.TransportError:
                return
            if answer.status_code == 200:
                with lock:
                    disclosed.extend(
                        c["uuid"] for c in answer.json()["cards"] if c["indicator"] != "info"
                    )

        with ThreadPoolExecutor(max_workers=6) as pool:
            for n in range(400):
                pool.submit(send_feedback if n % 2 else send_call, n)
            enough.wait(timeout=60)
            os.kill(served.process.pid, signal.SIGKILL)
        served.process.wait()
        client.close()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL and disclosed
    with sqlite3.connect(data_dir / SQLITE_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = {row[0] for row in db.execute("SELECT card_uuid FROM feedback")}
        audited = {row[0] for row in db.execute("SELECT card_uuid FROM audit_event")}
    assert set(acknowledged) <= kept
    assert set(disclosed) <= audited
