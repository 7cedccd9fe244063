"""Shared test fixtures.

The public reference material (CDS Hooks examples, sourced code lists, Synthea patients) lives
beside the project in ../shared/reference and is never copied into it. Tests that need it use the
`reference_dir` fixture, which skips with a clear message when it is absent.
"""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(
    os.environ.get("IRIS_REFERENCE_DIR", PROJECT_ROOT.parent / "shared" / "reference")
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        pytest.skip(
            f"reference material not found at {REFERENCE_DIR}; set IRIS_REFERENCE_DIR to the "
            "shared/reference folder to run this test"
        )
    return REFERENCE_DIR
