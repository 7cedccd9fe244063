"""Run every benchmark section and print one table.

python -m benchmarks            # every section (make bench)
python -m benchmarks engine     # only the named sections
"""

import importlib
import pkgutil
import platform
import sys
import time

import benchmarks
from benchmarks.table import Row, render


def main(argv: list[str] | None = None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv)
    rows: list[Row] = []
    started = time.perf_counter()
    modules = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))
    unknown = wanted - set(modules)
    if unknown:
        print(f"no such section: {', '.join(sorted(unknown))}; sections: {', '.join(modules)}")
        return 2
    for module in modules:
        if wanted and module not in wanted:
            continue
        section = importlib.import_module(f"benchmarks.{module}")
        if callable(getattr(section, "run", None)):
            rows.extend(section.run())
    print(f"iris-prompt benchmarks on {platform.machine()} / Python {platform.python_version()}")
    print(render(rows))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
