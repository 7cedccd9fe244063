"""A Bundle reader that takes its time over chosen files, so that a worker process finishes
them after files later by name. It is handed to the worker processes, so it lives here, in a
module they can import, not in a test module."""

import time
from dataclasses import dataclass
from pathlib import Path

from iris_prompt.simulate.population import BundleReader, PatientResources, Skipped


@dataclass(frozen=True)
class SlowReader(BundleReader):
    """Reads as `BundleReader`, after waiting `seconds` before each file named in `slow`."""

    slow: frozenset[str]
    seconds: float

    def read(self, unit: str) -> PatientResources | Skipped | None:
        if Path(unit).name in self.slow:
            time.sleep(self.seconds)
        return super().read(unit)
