"""Run every benchmark section and print one table."""

import importlib
import pkgutil
import platform
import sys
import time

import benchmarks
from benchmarks.table import Row, render


def main() -> int:
    rows: list[Row] = []
    started = time.perf_counter()
    for module in sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)):
        section = importlib.import_module(f"benchmarks.{module}")
        if callable(getattr(section, "run", None)):
            rows.extend(section.run())
    print(f"iris-prompt benchmarks on {platform.machine()} / Python {platform.python_version()}")
    print(render(rows))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
