"""The alert-burden simulation over the Synthea patients (../shared/reference/synthea/patients,
39 records, about 48 MB), repeated 8 times into one population of 312 patients so that a pass
takes long enough to time, including pass one and starting the worker processes.

Each row is the time per patient of whole passes (median and p95 over the passes), so the
target of at least 200 patients a second on both cores is a median under 5 ms. Rows: both cores (the
default), one process (to see what the second core buys), both cores with --compare (every
record decided under two code-set versions), and the same population as a Bulk Data NDJSON
export.
"""

import datetime
import os
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.table import Row, summarise
from iris_prompt.codesets.files import default_codesets_dir
from iris_prompt.simulate.cli import simulate
from iris_prompt.simulate.population import reference_id

SECTION = "simulation"
COPIES, PASSES = 8, 3
AS_OF = datetime.date(2026, 12, 1)
TARGET_MS = 5.0  # 200 patients a second
REFERENCE = Path(
    os.environ.get(
        "IRIS_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)


def bundle_folder(source: Path, target: Path) -> Path:
    """COPIES of each Synthea file, each copy with its own Patient id: the same records, COPIES
    times over. (Links to one file would be one patient to the simulation, counted once.)"""
    target.mkdir()
    for file in sorted(source.glob("*.json")):
        data = file.read_bytes()
        entries = orjson.loads(data)["entry"]
        patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
        for copy in range(COPIES):
            unique = data.replace(patient["id"].encode(), f"{patient['id']}-{copy}".encode())
            (target / f"{copy}-{file.name}").write_bytes(unique)
    return target


def ndjson_export(source: Path, target: Path) -> Path:
    """The same population as one `<Type>.ndjson` per type, each copy with its own ids."""
    target.mkdir()
    streams: dict[str, list[bytes]] = {}
    for file in sorted(source.glob("*.json")):
        entries = orjson.loads(file.read_bytes())["entry"]
        patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
        for entry in entries:
            line = orjson.dumps(entry["resource"])
            for copy in range(COPIES):
                unique = line.replace(patient["id"].encode(), f"{patient['id']}-{copy}".encode())
                streams.setdefault(entry["resource"]["resourceType"], []).append(unique + b"\n")
        assert reference_id(f"urn:uuid:{patient['id']}") == patient["id"]
    for kind, lines in streams.items():
        (target / f"{kind}.ndjson").write_bytes(b"".join(lines))
    return target


def one_code_fewer(target: Path) -> Path:
    """The bundled code sets without one trigger code: an 'old' version to compare with."""
    shutil.copytree(default_codesets_dir(), target)
    members = target / "trigger.csv"
    lines = members.read_text(encoding="utf-8").splitlines(keepends=True)
    members.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")
    return target


def per_patient(population: Path, **options: object) -> tuple[list[float], int]:
    """Seconds per patient of each whole pass, and the patients in one pass."""
    times, patients = [], 0
    for _ in range(PASSES):
        started = time.perf_counter()
        report = simulate(population, as_of=AS_OF, **options)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        patients = report.new.records
        assert not report.skipped, report.skipped
        times.append(elapsed / patients)
    return times, patients


def row(what: str, population: Path, target: float | None = None, **options: object) -> Row:
    times, patients = per_patient(population, **options)
    rate = 1 / sorted(times)[len(times) // 2]
    return summarise(SECTION, f"{what}, {patients} patients: {rate:.0f}/s", times, target)


def run() -> list[Row]:
    source = REFERENCE / "synthea" / "patients"
    if not source.is_dir():
        print(f"simulation: skipped, no Synthea patients at {source}")
        return []
    with tempfile.TemporaryDirectory(prefix="simulation-") as temporary:
        folder = Path(temporary)
        bundles = bundle_folder(source, folder / "bundles")
        old = one_code_fewer(folder / "old-codesets")
        rows = [
            # The target is for the Synthea records on both cores; the other rows show what one
            # core, a comparison and the NDJSON layout cost beside it.
            row("Bundles, 2 processes", bundles, TARGET_MS, workers=2),
            row("Bundles, 1 process", bundles, workers=1),
            row("Bundles, 2 processes, --compare", bundles, workers=2, compare_dir=old),
        ]
        export = ndjson_export(source, folder / "ndjson")
        rows.append(row("NDJSON, 2 processes", export, workers=2))
    return rows
