"""Running the web app: the listening socket, uvicorn, and a background-thread server for tests and notebooks.

The socket is bound here before uvicorn starts, so a port in use or an address that is not this
machine's fails before the model loads, and ``--port 0`` (any free port) reports the port it got.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from ferlab.deploy.media import DEFAULT_MAX_UPLOAD_BYTES
from ferlab.deploy.web.uploads import MULTIPART_SLACK
from ferlab.errors import FerlabError

MAX_PORT = 65535


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port); an impossible address is one error line."""
    if not 0 <= port <= MAX_PORT:
        raise FerlabError(f"--port {port}: not a TCP port; choose 1-{MAX_PORT} (or 0 for any free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (socket.gaierror, OverflowError, UnicodeError) as exc:  # gaierror first: it is an OSError too
        sock.close()
        why = getattr(exc, "strerror", None) or exc
        raise FerlabError(f"--host {host}: not an address of this machine ({why}); use 127.0.0.1 or 0.0.0.0") from None
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        raise FerlabError(f"--host {host} --port {port}: cannot listen there ({why}); choose another --port, "
                          f"or stop the program using it") from None
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address() -> str | None:
    """This machine's address on its default route (a UDP socket sends nothing on connect), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, only used to pick the interface
            return sock.getsockname()[0]
    except OSError:
        return None


def server_for(app: FastAPI, log_level: str = "warning", **config):
    """A uvicorn server for ``app`` with the WebSocket message limit that fits its upload limit."""
    import uvicorn

    limit = app.state.limits["max_upload_bytes"] if hasattr(app.state, "limits") else DEFAULT_MAX_UPLOAD_BYTES
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, ws_max_size=ws_max_size(limit), **config))


def ws_max_size(max_upload_bytes: int) -> int:
    """The WebSocket message size uvicorn accepts: above the frame limit, so an oversized frame gets an error
    answer instead of a closed connection (a message over this closes it, code 1009)."""
    return max(16 * 1024 * 1024, max_upload_bytes + MULTIPART_SLACK)


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread (tests, notebooks); yields its ``http://host:port`` URL."""
    sock = bind_socket(host, port)
    server = server_for(app, log_level)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ferlab-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the web server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
