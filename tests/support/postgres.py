"""A real, throwaway PostgreSQL cluster for the store's tests (Debian's postgresql package).

`PostgresCluster.start()` makes a cluster in a temporary folder with `initdb`, owned by and run
as the `postgres` user when we are root (PostgreSQL refuses to run as root), listening on a free
loopback port; `stop()`/`start()` stop and restart it on the same port (the fault tests), and
`destroy()` stops it and removes the folder. `new_database()` gives each test its own empty
database, and `give_back()` empties it for a later test; `new_migrated_database(migrate)` and
`give_back_migrated()` do the same for a database at the head of the store's migrations, kept
migrated and only its tables emptied between tests.
The package is installed by scripts/ensure-postgresql when missing (as `make test` does).
"""

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.support.process import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        subprocess.run([str(PROJECT_ROOT / "scripts" / "ensure-postgresql")], check=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


class PostgresCluster:
    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="iris-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self._spare: list[str] = []
        self._spare_migrated: list[str] = []
        self._emptied_by: dict[str, int] = {}
        self._empty_shape: tuple[Any, ...] | None = None
        self._migrated_shape: tuple[Any, ...] | None = None
        self._migrated_reusable = True
        self._migrate: Callable[[str], object] | None = None
        self.migrations = 0  # databases migrated so far (the rest were reused)
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def new_database(self) -> str:
        """An empty database: one a finished test gave back (if nothing has used it since),
        else a new one."""
        while self._spare:
            name = self._spare.pop()
            if self._untouched(name, self._empty_shape):
                return self.url(name)
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        if self._empty_shape is None:
            with psycopg.connect(self._dsn(name), autocommit=True) as connection:
                self._empty_shape = _shape(connection)
        return self.url(name)

    def give_back(self, url: str) -> None:
        """Empty a finished test's database for the next: its sessions ended, its schema dropped
        and made again. A third of the cost of CREATE DATABASE, which copies the template's
        catalogs (about 8 MB) each time. A database that cannot be emptied is not reused."""
        name = url.rsplit("/", 1)[1]
        try:
            with psycopg.connect(self._dsn(name), autocommit=True) as connection:
                _end_other_sessions(connection)
                connection.execute("DROP SCHEMA public CASCADE")
                # As initdb makes it (PostgreSQL 15): owned by the database's owner, usable by all.
                connection.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
                connection.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        except psycopg.Error:
            return  # the cluster stopped, say: that database is simply not used again
        self._spare.append(name)

    def new_migrated_database(self, migrate: Callable[[str], object]) -> str:
        """A database at the head of the store's migrations (`migrate(url)` applies them; the
        same function for the whole run): one a finished test gave back, its tables emptied, if
        nothing has used it since, else a new one migrated now. Migrating costs a test more
        than everything else it does to the database."""
        if self._migrate is None:
            self._migrate = migrate
        elif migrate is not self._migrate:
            raise ValueError("one cluster keeps databases migrated by one function only")
        while self._spare_migrated:
            name = self._spare_migrated.pop()
            if self._untouched(name, self._migrated_shape):
                return self.url(name)
        url = self.new_database()
        migrate(url)
        self.migrations += 1
        if self._migrated_shape is None:
            with psycopg.connect(self._dsn(url.rsplit("/", 1)[1]), autocommit=True) as connection:
                self._migrated_shape = _shape(connection)
                # Emptying a database for reuse would also remove rows a migration put there.
                self._migrated_reusable = _rows(connection) == 0
        return url

    def give_back_migrated(self, url: str) -> None:
        """Empty a finished test's migrated database for the next: its sessions ended and every
        table but Alembic's truncated (identities restarted), when its schema is still as the
        migrations made it; else it is emptied as any other."""
        name = url.rsplit("/", 1)[1]
        try:
            with psycopg.connect(self._dsn(name), autocommit=True) as connection:
                _end_other_sessions(connection)
                if self._migrated_reusable and _shape(connection) == self._migrated_shape:
                    tables = sql.SQL(", ").join(map(sql.Identifier, _data_tables(connection)))
                    connection.execute(
                        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables)
                    )
                    self._spare_migrated.append(name)
                    self._emptied_by[name] = connection.info.backend_pid
                    return
        except psycopg.Error:
            return  # the cluster stopped, say: that database is simply not used again
        self.give_back(url)

    def _untouched(self, name: str, shape: tuple[Any, ...] | None) -> bool:
        """No session on it, its catalog as it was given back and no row in it: a test that
        leaked a connection may have used it after it was given back."""
        with psycopg.connect(self._dsn(name), autocommit=True) as connection:
            # The session that emptied it may still be ending (PostgreSQL ends a backend after
            # its client goes): wait for that one only; any other session refuses it.
            emptied_by = self._emptied_by.pop(name, None)
            if emptied_by is not None:
                connection.execute("SELECT pg_terminate_backend(%s, 5000)", [emptied_by])
            if _scalar(connection, SESSIONS):
                return False
            return _shape(connection) == shape and _rows(connection) == 0


SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid()"
)

# What a test could leave behind in a database's catalog, outside PostgreSQL's own schemas:
# schemas, relations of every kind (tables, sequences, views), columns with their types and
# defaults, constraints, indexes, triggers, functions, extensions, and the database's settings.
OWN = "NOT LIKE 'pg\\_%' AND {0} <> 'information_schema'"
SHAPE = f"""
SELECT
 (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace
   WHERE nspname {OWN.format("nspname")}),
 (SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ','
     ORDER BY n.nspname, c.relname)
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname {OWN.format("n.nspname")}),
 (SELECT string_agg(concat_ws(' ', table_schema, table_name, column_name, data_type,
     is_nullable, character_maximum_length, numeric_precision, column_default), ','
     ORDER BY table_schema, table_name, column_name)
   FROM information_schema.columns WHERE table_schema {OWN.format("table_schema")}),
 (SELECT string_agg(concat_ws(' ', c.conrelid::regclass::text, c.conname,
     pg_get_constraintdef(c.oid)), ',' ORDER BY c.conrelid::regclass::text, c.conname)
   FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
   WHERE n.nspname {OWN.format("n.nspname")}),
 (SELECT string_agg(indexdef, ',' ORDER BY indexdef) FROM pg_indexes
   WHERE schemaname {OWN.format("schemaname")}),
 (SELECT string_agg(pg_get_triggerdef(oid), ',' ORDER BY tgname) FROM pg_trigger
   WHERE NOT tgisinternal),
 (SELECT string_agg(p.oid::regprocedure::text, ',' ORDER BY p.oid::regprocedure::text)
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname {OWN.format("n.nspname")}),
 (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension),
 (SELECT string_agg(array_to_string(setconfig, ';'), ',') FROM pg_db_role_setting
   WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
"""


def _shape(connection: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """The catalog (SHAPE) and the migrations' revision, if any."""
    return (*(connection.execute(SHAPE).fetchone() or ()), _revision(connection))


def _revision(connection: psycopg.Connection[Any]) -> Any:
    if _scalar(connection, "SELECT to_regclass('public.alembic_version')") is None:
        return None
    return _scalar(connection, "SELECT string_agg(version_num, ',') FROM alembic_version")


def _end_other_sessions(connection: psycopg.Connection[Any]) -> None:
    # With a timeout, pg_terminate_backend waits for each to end (PostgreSQL 14 and later).
    connection.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


def _scalar(connection: psycopg.Connection[Any], query: Any) -> Any:
    row = connection.execute(query).fetchone()
    return None if row is None else row[0]


def _data_tables(connection: psycopg.Connection[Any]) -> list[str]:
    rows = connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'alembic_version' ORDER BY tablename"
    )
    return [row[0] for row in rows]


def _rows(connection: psycopg.Connection[Any]) -> int:
    """How many rows the public tables but Alembic's hold."""
    tables = _data_tables(connection)
    if not tables:
        return 0
    counts = sql.SQL(" + ").join(
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in tables
    )
    return int(_scalar(connection, sql.SQL("SELECT {}").format(counts)))
