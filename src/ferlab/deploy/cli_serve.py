"""The `ferlab serve` command."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

# The same defaults as ferlab.deploy.web (not imported here: the CLI starts without FastAPI).
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000


def register(app: typer.Typer) -> None:
    """Add `ferlab serve` to the CLI."""

    @app.command("serve")
    def serve_cmd(
        model: Annotated[Path | None, typer.Option(help="A run directory, or a .keras, .tflite or .onnx model file.")] = None,
        host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 opens the server to the whole network.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        detector: Annotated[str, typer.Option(help="Face detector: haar (built in) or yunet (needs --detector-model).")] = "haar",
        detector_model: Annotated[Path | None, typer.Option(help="yunet: its ONNX file (face_detection_yunet_2023mar.onnx).")] = None,
        max_upload_bytes: Annotated[int, typer.Option(help="Largest image upload or WebSocket frame, in bytes (larger: HTTP 413).")] = DEFAULT_MAX_UPLOAD_BYTES,
        max_pixels: Annotated[int, typer.Option(help="Largest image, width x height (larger: HTTP 413).")] = DEFAULT_MAX_PIXELS,
        workers: Annotated[int | None, typer.Option(help="Threads that decode and detect (default: the CPU count, 2 to 8).")] = None,
        ssl_certfile: Annotated[Path | None, typer.Option(help="HTTPS certificate (PEM); phones need HTTPS for the camera.")] = None,
        ssl_keyfile: Annotated[Path | None, typer.Option(help="HTTPS private key (PEM), with --ssl-certfile.")] = None,
        log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
    ) -> None:
        """Serve the model over HTTP: a camera page at /, POST /api/predict, GET /api/health, WebSocket /ws, docs at /docs.

        The page opens the device camera and shows each face's box, label and emotion bars live; it can also
        analyse a still image. Browsers give the camera only to secure pages: http://localhost works on this
        computer; from a phone use HTTPS (--ssl-certfile/--ssl-keyfile) or a tunnel (see the README).
        """
        from ferlab.cli import console
        from ferlab.errors import FerlabError

        if model is None:
            raise FerlabError("--model: give a run directory, or a .keras, .tflite or .onnx model file")
        for name, value in (("--max-upload-bytes", max_upload_bytes), ("--max-pixels", max_pixels), ("--port", port)):
            if value < (0 if name == "--port" else 1):
                raise FerlabError(f"{name}: must be positive, got {value}")
        if workers is not None and workers < 1:
            raise FerlabError(f"--workers: must be at least 1, got {workers}")
        if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            raise FerlabError(f"--log-level: unknown level {log_level!r}; choose critical, error, warning, info or debug")
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise FerlabError("--ssl-certfile and --ssl-keyfile: give both (or neither)")
        for name, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
            if path is not None and not path.is_file():
                raise FerlabError(f"{name} {path}: no such file; make one with openssl (see the README: phones)")
        _check_port_free(host, port)

        from ferlab.deploy.detect import make_detector
        from ferlab.deploy.runtime import load_classifier

        def detector_factory():
            return make_detector(detector, detector_model)

        detector_factory()  # a bad --detector/--detector-model fails now, with its one-line message
        with console.status(f"loading {model}"):
            classifier = load_classifier(model)

            import uvicorn

            from ferlab.deploy.web import create_app, ws_max_size

            web_app = create_app(classifier, detector_factory, max_upload_bytes=max_upload_bytes,
                                 max_pixels=max_pixels, workers=workers)
        scheme = "https" if ssl_certfile else "http"
        if host in ("0.0.0.0", "::", ""):
            shown = _lan_address() or "THIS-MACHINE'S-ADDRESS"
        else:
            shown = "localhost" if _is_loopback(host) else host
        shown = f"[{shown}]" if ":" in shown else shown
        console.print(f"serving {classifier.path} ({classifier.backend}, classes {', '.join(classifier.classes)}; "
                      f"{detector} detector)")
        console.print(f"open {scheme}://{shown}:{port}/  (API docs: {scheme}://{shown}:{port}/docs; Ctrl+C stops)")
        if not _is_loopback(host):
            console.print(f"[yellow]note:[/yellow] listening on {host}: anyone who can reach this machine can use "
                          f"the server; use --host 127.0.0.1 unless you mean it"
                          + ("" if ssl_certfile else "; phones also need HTTPS for the camera (--ssl-certfile)"))
        uvicorn.run(web_app, host=host, port=port, log_level=log_level, ws_max_size=ws_max_size(max_upload_bytes),
                    ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                    ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _lan_address() -> str | None:
    """This machine's address on its default route (a UDP socket sends nothing on connect), or None."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, only used to pick the interface
            return sock.getsockname()[0]
    except OSError:
        return None


def _check_port_free(host: str, port: int) -> None:
    """Fail before the model loads when the address cannot be bound (in use, or not this machine's)."""
    import socket

    from ferlab.errors import FerlabError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise FerlabError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
                              f"choose another --port, or stop the program using it") from None
