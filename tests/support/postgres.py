"""A real, throwaway PostgreSQL cluster for the store's tests (Debian's postgresql package).

`PostgresCluster.start()` makes a cluster in a temporary folder with `initdb`, owned by and run
as the `postgres` user when we are root (PostgreSQL refuses to run as root), listening on a free
loopback port; `stop()`/`start()` stop and restart it on the same port (the fault tests), and
`destroy()` stops it and removes the folder. `new_database()` gives each test its own empty
database, and `give_back()` empties it for a later test.
The package is installed by scripts/ensure-postgresql when missing (as `make test` does).
"""

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

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
            if self._untouched(name):
                return self.url(name)
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def give_back(self, url: str) -> None:
        """Empty a finished test's database for the next: its sessions ended, its schema dropped
        and made again. A third of the cost of CREATE DATABASE, which copies the template's
        catalogs (about 8 MB) each time. A database that cannot be emptied is not reused."""
        name = url.rsplit("/", 1)[1]
        try:
            with psycopg.connect(self._dsn(name), autocommit=True) as connection:
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                connection.execute("DROP SCHEMA public CASCADE")
                # As initdb makes it (PostgreSQL 15): owned by the database's owner, usable by all.
                connection.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
                connection.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        except psycopg.Error:
            return  # the cluster stopped, say: that database is simply not used again
        self._spare.append(name)

    def _untouched(self, name: str) -> bool:
        """No session on it and nothing in it: a test that leaked a connection may have used it
        after it was given back."""
        with psycopg.connect(self._dsn(name), autocommit=True) as connection:
            sessions, tables = connection.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()),"
                " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public')"
            ).fetchone() or (1, 1)
        return sessions == 0 and tables == 0
