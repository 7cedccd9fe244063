"""Where the store lives, and its schema: SQLite in the data directory, or PostgreSQL.

    IRIS_DATA_DIR=/var/lib/iris-prompt        # SQLite file iris.sqlite3 here (the default)
    IRIS_DATABASE_URL=postgresql+psycopg://iris@db.example/iris   # PostgreSQL instead

`upgrade(url)` applies the migrations shipped in this package (Alembic, `migrations/`);
`schema_state(engine)` says whether a database is at the head revision. The service upgrades an
embedded SQLite itself at start-up; a PostgreSQL schema that is behind stops start-up with the
command to run (`iris-prompt store upgrade`), because several workers share it and one of them
migrating under the others is how data is lost.
"""

import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

__all__ = [
    "SQLITE_FILE",
    "SchemaBehind",
    "SchemaNewer",
    "SchemaState",
    "StoreError",
    "StoreUnreachable",
    "UnusableUrl",
    "default_data_dir",
    "head",
    "make_engine",
    "open_engine",
    "prepare",
    "schema_state",
    "sqlite_url",
    "upgrade",
]

log = logging.getLogger(__name__)

SQLITE_FILE = "iris.sqlite3"
MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(RuntimeError):
    """The store cannot be used: the service does not start.

    StoreError
    +-- SchemaBehind        the PostgreSQL schema is older than this release's
    +-- SchemaNewer         the schema is a newer release's: this one must not touch it
    +-- StoreUnreachable    the database cannot be reached, or the embedded store opened
    +-- UnusableUrl         IRIS_DATABASE_URL is not a URL this release can open
    """


class SchemaBehind(StoreError):
    """The database's schema is older than this release's, and we may not migrate it."""


class SchemaNewer(StoreError):
    """Migrated by a newer release (a rollback): migrating it back is that release's job."""


class StoreUnreachable(StoreError):
    pass


class UnusableUrl(StoreError):
    pass


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/iris-prompt, else ~/.local/share/iris-prompt."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "iris-prompt"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+pysqlite:///{data_dir / SQLITE_FILE}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer. synchronous=NORMAL in WAL mode: a commit survives the
    # process being killed (it is in the WAL file once written); only a power cut can lose the
    # last commits. busy_timeout: several threads of one process may write at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_engine(url: str) -> Engine:
    """`make_engine` for IRIS_DATABASE_URL, refused as UnusableUrl when malformed or naming a
    driver this release lacks; the message names the error's type, never the URL (it holds a
    password)."""
    try:
        return make_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as error:
        said = f"IRIS_DATABASE_URL is not a usable database URL ({type(error).__name__})"
        if isinstance(error, ImportError | NoSuchModuleError):
            said += ": PostgreSQL is reached as postgresql+psycopg://user:password@host/database"
        raise UnusableUrl(said) from None


def make_engine(url: str, *, connect_timeout: int = 3) -> Engine:
    """An engine for `url`. PostgreSQL connections give up after `connect_timeout` seconds and
    are checked before use, so a database that went away and came back is picked up again."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=8,
        pool_timeout=connect_timeout,
        connect_args={"connect_timeout": connect_timeout},
    )


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head() -> str:
    """The newest migration this release ships (read once: the scripts do not change while it
    runs)."""
    heads = ScriptDirectory.from_config(_config()).get_heads()
    return heads[0]


@cache
def _revisions() -> frozenset[str]:
    """Every migration this release ships (read once, as `head`)."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions())


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def ok(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        """Not at head, and at a revision this release knows (or none): an upgrade brings it
        to head. Otherwise the schema is a newer release's."""
        return not self.ok and (self.current is None or self.current in _revisions())

    def mismatch(self, store: str = "the store") -> str:
        """What to tell an operator when the schema is not at head, and what to run."""
        at = f"{store}'s schema is at {self.current or 'nothing'}"
        if self.behind:
            return f"{at}, this release needs {self.head}: run `iris-prompt store upgrade`"
        return f"{at}, newer than this release's {self.head}: run the release that migrated it"


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(current, head())


def upgrade(engine: Engine) -> SchemaState:
    """Apply every migration not yet applied (a no-op at head; safe to run twice)."""
    before = schema_state(engine)
    if not before.ok and not before.behind:
        raise SchemaNewer(before.mismatch())
    if not before.ok:
        config = _config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        log.info("store: schema upgraded from %s to %s", before.current or "empty", before.head)
    return schema_state(engine)


def prepare(url: str | None, data_dir: Path) -> Engine:
    """The engine the service runs on. SQLite (no `url`): the data directory is created and the
    schema upgraded. PostgreSQL: the schema must be at head already, else SchemaBehind."""
    if url is None:
        return _embedded(data_dir)
    engine = open_engine(url)
    try:
        state = schema_state(engine)
    except SQLAlchemyError as error:
        engine.dispose()
        raise StoreUnreachable(
            f"the store's database (IRIS_DATABASE_URL) cannot be reached: {type(error).__name__}"
        ) from None
    if not state.ok:
        engine.dispose()
        said = state.mismatch("the PostgreSQL store")
        if state.behind:
            said += " (with the same IRIS_DATABASE_URL) before starting the service"
        raise (SchemaBehind if state.behind else SchemaNewer)(said)
    return engine


def _embedded(data_dir: Path) -> Engine:
    """The embedded store in `data_dir`, made and upgraded; StoreUnreachable, saying what the
    file system or SQLite said (a path, never a secret), when it cannot be."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreUnreachable(
            f"the embedded store's folder {data_dir} (IRIS_DATA_DIR) cannot be made: "
            f"{error.strerror or type(error).__name__}"
        ) from None
    engine = make_engine(sqlite_url(data_dir))
    try:
        upgrade(engine)
    except SQLAlchemyError as error:
        engine.dispose()
        raise StoreUnreachable(
            f"the embedded store {data_dir / SQLITE_FILE} (IRIS_DATA_DIR) cannot be opened: "
            f"{getattr(error, 'orig', None) or type(error).__name__}"
        ) from None
    except StoreError:
        engine.dispose()
        raise
    return engine
