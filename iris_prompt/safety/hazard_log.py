"""The hazard log (DCB0129) as typed values, read from `docs/safety/hazard-log.toml`.

Pure apart from `load`, which reads the file: `log_from_toml` builds the log from the parsed
TOML and raises one `HazardLogError` listing every problem, each naming the hazard and field,
since clinical safety officers edit the file by hand. A risk is a likelihood and a severity on
the 5x5 matrix the file itself holds; its rating is read from the matrix, never stored.

>>> matrix = Matrix(
...     likelihoods=("Very low", "Low", "Medium", "High", "Very high"),
...     severities=("Minor", "Significant", "Considerable", "Major", "Catastrophic"),
...     ratings=(
...         (1, 1, 2, 2, 3), (1, 2, 2, 3, 4), (2, 2, 3, 3, 4), (2, 3, 3, 4, 5), (3, 4, 4, 5, 5),
...     ),
... )
>>> matrix.rating(Risk("Medium", "Major"))
3
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Area",
    "Control",
    "Hazard",
    "HazardLog",
    "HazardLogError",
    "Matrix",
    "Risk",
    "load",
    "log_from_toml",
]


class HazardLogError(ValueError):
    """The hazard log cannot be read; `problems` names each fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the hazard log cannot be read:\n- " + "\n- ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Risk:
    likelihood: str
    severity: str


@dataclass(frozen=True)
class Level:
    """A row or column of the matrix, or a rating, with what it means."""

    name: str
    meaning: str


@dataclass(frozen=True)
class Matrix:
    likelihoods: tuple[str, ...]
    severities: tuple[str, ...]
    # ratings[likelihood][severity], both from the lowest up.
    ratings: tuple[tuple[int, ...], ...]
    likelihood_meanings: tuple[Level, ...] = ()
    severity_meanings: tuple[Level, ...] = ()
    # One per rating 1..5: its name and what it means for acceptance.
    rating_levels: tuple[Level, ...] = ()

    def rating(self, risk: Risk) -> int:
        row = self.likelihoods.index(risk.likelihood)
        return self.ratings[row][self.severities.index(risk.severity)]

    def rating_name(self, rating: int) -> str:
        return self.rating_levels[rating - 1].name if self.rating_levels else str(rating)


@dataclass(frozen=True)
class Control:
    says: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Hazard:
    id: str
    area: str
    title: str
    topics: tuple[str, ...]
    causes: tuple[str, ...]
    effects: tuple[str, ...]
    initial: Risk
    residual: Risk
    controls: tuple[Control, ...]
    deployment: tuple[str, ...] = ()


@dataclass(frozen=True)
class Area:
    id: str
    title: str


@dataclass(frozen=True)
class HazardLog:
    title: str
    standard: str
    intended_use: str
    matrix: Matrix
    areas: tuple[Area, ...]
    hazards: tuple[Hazard, ...]
    sign_off: dict[str, str]

    @property
    def controls(self) -> tuple[Control, ...]:
        return tuple(control for hazard in self.hazards for control in hazard.controls)

    def node_ids(self) -> tuple[str, ...]:
        """Every test node id a control names, once each, in the order of the log."""
        return tuple(dict.fromkeys(t for control in self.controls for t in control.tests))


def load(path: Path) -> HazardLog:
    with path.open("rb") as file:
        try:
            data = tomllib.load(file)
        except tomllib.TOMLDecodeError as error:
            raise HazardLogError([f"{path.name}: {error}"]) from None
    return log_from_toml(data)


class _Reader:
    """Reads fields, collecting a problem (`where: field ...`) instead of raising at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def only(self, table: dict[str, Any], keys: frozenset[str], where: str) -> None:
        """A key the log does not know (a misspelling, a field in the wrong table) would be
        silently lost from the safety case: name it."""
        for key in sorted(set(table) - keys):
            self.problems.append(f"{where}: unknown field {key!r}")

    def text(self, table: dict[str, Any], key: str, where: str, *, empty: bool = False) -> str:
        value = table.get(key)
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.problems.append(f"{where}: {key} must be {'a' if empty else 'a non-empty'} string")
            return ""
        return value

    def texts(
        self, table: dict[str, Any], key: str, where: str, *, empty: bool = False
    ) -> tuple[str, ...]:
        value = table.get(key, [] if empty else None)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.problems.append(f"{where}: {key} must be a list of non-empty strings")
            return ()
        if not value and not empty:
            self.problems.append(f"{where}: {key} must name at least one")
        return tuple(value)

    def tables(self, table: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        value = table.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.append(f"{where}: [[{key}]] tables are missing")
            return []
        return value

    def levels(self, table: dict[str, Any], key: str) -> tuple[Level, ...]:
        return tuple(
            Level(
                self.text(row, "name", f"matrix.{key}"), self.text(row, "meaning", f"matrix.{key}")
            )
            for row in self.tables(table, key, "matrix")
        )

    def risk(self, hazard: dict[str, Any], key: str, where: str, matrix: Matrix) -> Risk:
        value = hazard.get(key)
        if not isinstance(value, dict):
            self.problems.append(f"{where}: {key} must be {{ likelihood, severity }}")
            return Risk(matrix.likelihoods[0], matrix.severities[0])
        likelihood = self.text(value, "likelihood", f"{where}.{key}")
        severity = self.text(value, "severity", f"{where}.{key}")
        if likelihood not in matrix.likelihoods:
            self.problems.append(f"{where}: {key} likelihood {likelihood!r} is not on the matrix")
            likelihood = matrix.likelihoods[0]
        if severity not in matrix.severities:
            self.problems.append(f"{where}: {key} severity {severity!r} is not on the matrix")
            severity = matrix.severities[0]
        return Risk(likelihood, severity)


def _matrix(data: dict[str, Any], read: _Reader) -> Matrix:
    table = data.get("matrix")
    if not isinstance(table, dict):
        read.problems.append("[matrix] is missing")
        table = {}
    likelihoods = read.levels(table, "likelihood")
    severities = read.levels(table, "severity")
    ratings = table.get("ratings")
    size = (len(likelihoods), len(severities))
    if not (
        isinstance(ratings, list)
        and len(ratings) == size[0]
        and all(isinstance(r, list) and len(r) == size[1] for r in ratings)
        and all(isinstance(v, int) and 1 <= v <= 5 for r in ratings for v in r)
    ):
        read.problems.append(
            f"matrix: ratings must be {size[0]} rows of {size[1]} ratings from 1 to 5"
        )
        ratings = [[1] * size[1]] * size[0]
    rating_tables = read.tables(table, "rating", "matrix")
    if [row.get("level") for row in rating_tables] != list(range(1, len(rating_tables) + 1)):
        read.problems.append("matrix: [[matrix.rating]] tables must give levels 1, 2, ... in order")
    rating_levels = tuple(
        Level(
            read.text(row, "name", "matrix.rating"),
            read.text(row, "acceptability", "matrix.rating"),
        )
        for row in rating_tables
    )
    if size != (5, 5) or len(rating_levels) != 5:
        read.problems.append("matrix: it must be 5x5 (likelihood by severity) with 5 ratings")
    return Matrix(
        likelihoods=tuple(level.name for level in likelihoods) or ("",),
        severities=tuple(level.name for level in severities) or ("",),
        ratings=tuple(tuple(row) for row in ratings),
        likelihood_meanings=likelihoods,
        severity_meanings=severities,
        rating_levels=rating_levels,
    )


HAZARD_FIELDS = frozenset(
    "id area title topics causes effects initial residual controls deployment".split()
)
CONTROL_FIELDS = frozenset({"says", "tests"})


def _hazard(table: dict[str, Any], number: int, matrix: Matrix, read: _Reader) -> Hazard:
    where = f"hazard {table.get('id') or f'#{number}'}"
    read.only(table, HAZARD_FIELDS, where)
    controls = []
    for n, control in enumerate(read.tables(table, "controls", where), start=1):
        read.only(control, CONTROL_FIELDS, f"{where} control {n}")
        controls.append(
            Control(
                says=read.text(control, "says", f"{where} control {n}"),
                tests=read.texts(control, "tests", f"{where} control {n}"),
            )
        )
    return Hazard(
        id=read.text(table, "id", where),
        area=read.text(table, "area", where),
        title=read.text(table, "title", where),
        topics=read.texts(table, "topics", where, empty=True),
        causes=read.texts(table, "causes", where),
        effects=read.texts(table, "effects", where),
        initial=read.risk(table, "initial", where, matrix),
        residual=read.risk(table, "residual", where, matrix),
        controls=tuple(controls),
        deployment=read.texts(table, "deployment", where, empty=True),
    )


def log_from_toml(data: dict[str, Any]) -> HazardLog:
    """The hazard log from its parsed TOML, or `HazardLogError` naming every problem."""
    read = _Reader()
    matrix = _matrix(data, read)
    areas = tuple(
        Area(read.text(a, "id", "area"), read.text(a, "title", "area"))
        for a in read.tables(data, "area", "the log")
    )
    hazards = tuple(
        _hazard(table, n, matrix, read)
        for n, table in enumerate(read.tables(data, "hazard", "the log"), start=1)
    )
    seen: set[str] = set()
    for hazard in hazards:
        if hazard.id in seen:
            read.problems.append(f"hazard {hazard.id}: the id is used twice")
        seen.add(hazard.id)
        if hazard.area not in {area.id for area in areas}:
            read.problems.append(f"hazard {hazard.id}: area {hazard.area!r} is not an [[area]]")
    sign_off = data.get("sign_off")
    if not isinstance(sign_off, dict) or not all(isinstance(v, str) for v in sign_off.values()):
        read.problems.append("[sign_off] must be a table of text fields")
        sign_off = {}
    log = HazardLog(
        title=read.text(data, "title", "the log"),
        standard=read.text(data, "standard", "the log"),
        intended_use=read.text(data, "intended_use", "the log"),
        matrix=matrix,
        areas=areas,
        hazards=hazards,
        sign_off=dict(sign_off),
    )
    if read.problems:
        raise HazardLogError(read.problems)
    return log
