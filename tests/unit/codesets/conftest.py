"""The bundled code sets, checked as the service checks them (no errors), once per worker."""

import pytest

from iris_prompt.codesets.files import CodeSets, check_folder, default_codesets_dir


@pytest.fixture(scope="session")
def sets() -> CodeSets:
    report = check_folder(default_codesets_dir())
    assert report.errors == []
    assert report.codesets is not None
    return report.codesets
