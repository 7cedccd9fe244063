"""A real, throwaway Redis server for the replay-store tests (Debian's redis-server package).

`RedisServer.start()` runs `redis-server` on a free loopback port with no persistence, in a
temporary folder; `stop()` and `start()` stop it and start it again on the same port (the
fault tests), `destroy()` stops it and removes the folder. The package is installed by
scripts/ensure-redis when missing (as `make test` does).
"""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.process import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def redis_server_bin() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        subprocess.run([str(PROJECT_ROOT / "scripts" / "ensure-redis")], check=True)
        found = "/usr/bin/redis-server"
    return found


class RedisServer:
    def __init__(self) -> None:
        self.binary = redis_server_bin()
        self.root = Path(tempfile.mkdtemp(prefix="iris-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.root),
        ]  # fmt: skip
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert self.process.poll() is None, (self.root / "redis.log").read_text()
                    assert time.monotonic() < deadline, "redis-server did not start in 10 s"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        client = redis.Redis(port=self.port)
        try:
            client.flushall()
        finally:
            client.close()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
