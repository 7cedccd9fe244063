"""The hand-made population (tests/fixtures/population), as Bundles and as a Bulk Data export.

The NDJSON export is made from the Bundles here, so the two can never drift apart. Its lines
are compact, as Bulk Data servers write them; Patient lines have their keys sorted, so
`resourceType` is not the first key and the reader's fallback (parse to find the type) is used.
"""

import datetime
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from iris_prompt.codesets.files import default_codesets_dir

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "population"
BUNDLES = FIXTURE / "bundles"
AS_OF = datetime.date(2026, 12, 1)
# The one code the comparison tests take out of the trigger set: Read v2 E2002, generalised
# anxiety disorder (codesets/trigger.csv).
MOVED_CODE = ("http://read.info/readv2", "E2002")


def bundle_resources(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Resource type -> every resource in the folder's Bundles, in file order."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for file in sorted(folder.glob("*.json")):
        for entry in json.loads(file.read_text(encoding="utf-8"))["entry"]:
            by_type[entry["resource"]["resourceType"]].append(entry["resource"])
    return by_type


def write_ndjson(folder: Path, by_type: dict[str, list[dict[str, Any]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, resources in by_type.items():
        lines = [
            json.dumps(r, separators=(",", ":"), sort_keys=kind == "Patient") + "\n"
            for r in resources
        ]
        (folder / f"{kind}.ndjson").write_text("".join(lines), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def ndjson_population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made population as a Bulk Data export: one `<Type>.ndjson` per type."""
    return write_ndjson(tmp_path_factory.mktemp("export"), bundle_resources(BUNDLES))


def codesets_without(target: Path, system_name: str, code: str) -> Path:
    """A copy of the bundled code sets with one trigger code taken out."""
    shutil.copytree(default_codesets_dir(), target)
    members = target / "trigger.csv"
    lines = members.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(f"{system_name},{code},")]
    assert len(kept) == len(lines) - 1, "the code to take out must be in the set once"
    members.write_text("".join(kept), encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def old_codesets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled code sets without Read v2 E2002: the 'old' version in comparisons."""
    return codesets_without(tmp_path_factory.mktemp("old") / "codesets", "Read v2", "E2002")
