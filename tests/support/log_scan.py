"""Every log line of a test run, scanned for what must never be logged.

`conftest.py` attaches `RunLog` to the root logger for the whole run, formatting each record as
the service does in production (`IRIS_LOG_FORMAT=json`, after the redacting filter), and scans
the lines at the end of the run: a caller JWT, a bearer token, the FHIR access token the tests
lend, an NHS number or a patient's name from the test records fails the run. (Servers the tests
start as separate processes write their own logs; `tests/api/test_workers.py` checks those.)
"""

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from cds_hooks.logs import RedactingFilter
from iris_prompt.ops.logs import JsonFormatter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
BEARER = re.compile(r"(?i)\bbearer\s+(?!\[redacted)[A-Za-z0-9\-._~+/]{8,}")


def _walk(value: object) -> Iterable[dict[str, object]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def identifying_values(folder: Path = FIXTURES) -> set[str]:
    """NHS numbers and names of the people in the test records."""
    found: set[str] = set()
    for path in folder.rglob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        for node in _walk(data):
            if node.get("system") == NHS_NUMBER_SYSTEM and isinstance(node.get("value"), str):
                found.add(str(node["value"]))
            if isinstance(node.get("family"), str):
                found.add(str(node["family"]))
            for given in node.get("given", ()) if isinstance(node.get("given"), list) else ():
                if isinstance(given, str) and len(given) >= 4:
                    found.add(given)
    return {value for value in found if len(value) >= 4}


def offending(lines: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """The lines holding a JWT, a bearer token or one of `secrets`."""
    words = sorted(set(secrets))
    named = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b") if words else None
    return [
        line
        for line in lines
        if JWT.search(line) or BEARER.search(line) or (named is not None and named.search(line))
    ]


class RunLog(logging.Handler):
    """Keeps every record of the run as the JSON line production would write."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactingFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is the test's, not ours
            self.handleError(record)
