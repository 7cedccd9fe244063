"""Slow clients are cut off (issue 16): `iris-prompt serve` as a real process, and sockets that
trickle a request's headers or its body."""

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import web
from tests.support.process import serve_process

pytestmark = pytest.mark.slow

SLOW = {"IRIS_HEADER_TIMEOUT_SECONDS": "0.5", "IRIS_BODY_TIMEOUT_SECONDS": "0.5"}


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection (waits up to 20 s for it to)."""
    sock.settimeout(20)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connections_trickling_headers_or_a_body_are_closed(tmp_path: Path) -> None:
    with serve_process(tmp_path, "--local", env=SLOW) as served:
        address = urlsplit(served.base_url)
        host, port = address.hostname or "", address.port or 0
        headers, bodies = [], []
        for _ in range(20):
            sock = socket.create_connection((host, port))
            sock.sendall(b"POST /cds-services/x HTTP/1.1\r\nHost: x\r\n")  # never finished
            headers.append(sock)
        for _ in range(20):
            sock = socket.create_connection((host, port))
            sock.sendall(
                b"POST /cds-services/iris-domestic-abuse-prompt HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"hook"'
            )  # 7 bytes of 1,000
            bodies.append(sock)
        try:
            assert all(closed_by_server(sock) for sock in headers)
            assert all(closed_by_server(sock) for sock in bodies)
        finally:
            for sock in headers + bodies:
                sock.close()
        # Nobody else was kept waiting, and a normal call is answered.
        assert web.get(served.base_url + "/healthz").status_code == 200
    log = served.log_text()
    assert "closed a connection: request not received in time" in log
    assert "unhandled" not in log  # a body cut short is no fault of the service
