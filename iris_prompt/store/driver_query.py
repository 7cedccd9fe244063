"""One read asked on every prompt, run on SQLite's own driver rather than through SQLAlchemy.

The repeat hold-back asks the card log a question on every prompt, inline on the event loop
when the store is SQLite (`Store._repeats`). Through SQLAlchemy's execution (connection
checkout, execution context, result, return to the pool) it cost about 200 us within a call,
ten times what SQLite spends answering it. Here SQLAlchemy still writes the SQL and converts
each parameter (the column types' bind processors, as its own execution does); sqlite3 runs it
on one pooled connection kept for these reads.

    reads = DriverReads(engine, {"q": select(...).where(t.c.x == bindparam("x"))})
    rows = reads.rows("q", {"x": 1})    # None if the driver failed: ask SQLAlchemy instead

Every statement is its own transaction (sqlite3 opens one implicitly only before a write), so
each read sees what has been committed by then.

A read the driver fails is logged and told to `on_fallback` (the operations wiring counts it,
`iris_sqlite_driver_fallbacks_total`), then asked through SQLAlchemy by the caller: a rising
count means the fast path is not being taken.
"""

import logging
import sqlite3
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, Select

__all__ = ["DriverReads"]

log = logging.getLogger(__name__)

Name = TypeVar("Name", bound=Hashable)


class _Compiled:
    def __init__(self, query: Select[Any], engine: Engine) -> None:
        dialect = engine.dialect
        compiled = query.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        self.convert = {
            name: convert
            for name, bind in compiled.binds.items()
            if (convert := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            self.convert[name](values[name]) if name in self.convert else values[name]
            for name in self.names
        )


class DriverReads(Generic[Name]):
    """Named queries on a SQLite engine (`engine`), run by its driver on one kept connection."""

    def __init__(self, engine: Engine, queries: Mapping[Name, Select[Any]]) -> None:
        self.engine = engine
        self._queries = {name: _Compiled(query, engine) for name, query in queries.items()}
        self._connection: Any = None
        self._lock = threading.Lock()
        # Told the sqlite3 error's class of each read handed back to SQLAlchemy.
        self.on_fallback: Callable[[str], None] | None = None

    def rows(self, name: Name, values: Mapping[str, Any]) -> list[tuple[Any, ...]] | None:
        """The rows of query `name`; None when the driver failed (the connection is dropped,
        and the next read takes another)."""
        query = self._queries[name]
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self.engine.raw_connection()
                found = self._connection.driver_connection.execute(
                    query.sql, query.parameters(values)
                )
                return list(found.fetchall())
            # The database or this connection at fault, PEP 249's DatabaseError family:
            # OperationalError (locked or busy, an I/O error, a file that cannot be opened),
            # ProgrammingError (this connection closed under it) and DatabaseError itself (a
            # damaged file). SQLAlchemy's path, on a fresh pooled connection, either answers
            # or raises the fault as the SQLAlchemyError its caller handles (cards shown) and
            # the engine's error hook counts; raised from here, a sqlite3 error would escape
            # that handling and fail the call. Not caught, as bugs that must show: Python's own
            # errors (a missing parameter, a value a bind processor refuses) and the driver's
            # InterfaceError (the driver misused). SQLAlchemy's errors from taking the
            # connection are the caller's kind already: asking again would wait on it twice.
            except sqlite3.DatabaseError as error:
                self._drop()
                kind = type(error).__name__
                code = getattr(error, "sqlite_errorname", None) or "no code"
                # The error's kind only, never its text or the read's parameters (a pseudonym).
                log.warning(
                    "read on SQLite's driver failed (%s, %s): asked through SQLAlchemy", kind, code
                )
                if self.on_fallback is not None:
                    self.on_fallback(kind)
                return None

    def close(self) -> None:
        """Give the kept connection back to the pool (at stop)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:  # pragma: no cover  # a broken connection: the pool drops it
                pass
