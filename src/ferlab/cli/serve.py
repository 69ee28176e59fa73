"""``ferlab serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferlab.cli.common import (
    DetectorModelOption,
    DetectorOption,
    MinConfidenceOption,
    ModelOption,
    console,
    load_classifier_with_status,
    make_detector_checked,
    model_path,
    positive,
)
from ferlab.deploy.detection import DEFAULT_DETECTOR
from ferlab.deploy.media import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES
from ferlab.deploy.pipeline import check_min_confidence
from ferlab.errors import FerlabError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def serve_cmd(
    model: ModelOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 opens the server to the whole network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port, printed).")] = 8000,
    detector: DetectorOption = DEFAULT_DETECTOR,
    detector_model: DetectorModelOption = None,
    max_upload_bytes: Annotated[int, typer.Option(help="Largest image upload or WebSocket frame, in bytes (larger: HTTP 413).")] = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: Annotated[int, typer.Option(help="Largest image, width x height (larger: HTTP 413).")] = DEFAULT_MAX_PIXELS,
    workers: Annotated[int | None, typer.Option(help="Threads that decode and detect (default: the CPU count, 2 to 8).")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="HTTPS certificate (PEM); phones need HTTPS for the camera.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="HTTPS private key (PEM), with --ssl-certfile.")] = None,
    min_confidence: MinConfidenceOption = 0.0,
    log_level: Annotated[str, typer.Option(help=f"uvicorn log level: {', '.join(LOG_LEVELS[:-1])}.")] = "info",
    ondevice: Annotated[bool, typer.Option("--ondevice/--no-ondevice", help="Offer on-device mode (the browser runs the models; needs a .tflite model and LiteRT.js: ferlab web-setup).")] = True,
) -> None:
    """Serve the model over HTTP: a camera page at /, POST /api/predict, GET /api/health, WebSocket /ws, docs at /docs.

    The page opens the device camera and shows each face's box, label and emotion bars live; it can also
    analyse a still image. On-device mode (the default where it can run) runs the detector and the
    classifier in the browser: no camera frame is sent to the server. Browsers give the camera only to secure pages: http://localhost works on this
    computer; from a phone use HTTPS (--ssl-certfile/--ssl-keyfile) or a tunnel (see the README).
    """
    model_file = model_path(model)
    check_min_confidence(min_confidence)
    positive("--max-upload-bytes", max_upload_bytes)
    positive("--max-pixels", max_pixels)
    positive("--workers", workers)
    if log_level not in LOG_LEVELS:
        raise FerlabError(f"--log-level: unknown level {log_level!r}; choose {', '.join(LOG_LEVELS[:-1])}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise FerlabError("--ssl-certfile and --ssl-keyfile: give both (or neither)")
    for name, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path is not None and not path.is_file():
            raise FerlabError(f"{name} {path}: no such file; make one with openssl (see the README: phones)")
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.web.server import bind_socket, is_loopback, lan_address

    sock = bind_socket(host, port)  # before the model loads: a port in use fails now; port 0 gets a real one
    port = sock.getsockname()[1]
    make_detector_checked(detector, detector_model)

    def detector_factory():
        return make_detector(detector, detector_model)

    def camera_detector_factory():  # one per camera client, following its faces as `ferlab live` does
        return make_detector(detector, detector_model, stream=True)

    classifier = load_classifier_with_status(model_file)
    from ferlab.deploy.web import create_app
    from ferlab.deploy.web.server import server_for

    web_app = create_app(classifier, detector_factory, camera_detector_factory=camera_detector_factory,
                         max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
                         workers=workers, min_confidence=min_confidence, ondevice=ondevice)
    scheme = "https" if ssl_certfile else "http"
    if host in ("0.0.0.0", "::", ""):
        shown = lan_address() or "THIS-MACHINE'S-ADDRESS"
    else:
        shown = "localhost" if is_loopback(host) else host
    shown = f"[{shown}]" if ":" in shown else shown
    console.print(f"serving {classifier.path} ({classifier.backend}, classes {', '.join(classifier.classes)}; "
                  f"{detector} detector)")
    device = web_app.state.ondevice
    console.print("camera: on the device by default (the browser runs the models)" if device.available
                  else f"camera: on the server (on-device mode off: {device.why})")
    console.print(f"open {scheme}://{shown}:{port}/  (API docs: {scheme}://{shown}:{port}/docs; Ctrl+C stops)")
    if not is_loopback(host):
        console.print(f"[yellow]note:[/yellow] listening on {host}: anyone who can reach this machine can use "
                      f"the server; use --host 127.0.0.1 unless you mean it"
                      + ("" if ssl_certfile else "; phones also need HTTPS for the camera (--ssl-certfile)"))
    server = server_for(web_app, log_level, ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
    server.run(sockets=[sock])


def web_setup_cmd() -> None:
    """Install the browser runtime of on-device mode (LiteRT.js, pinned by ferlab's package-lock.json) with npm
    into ferlab's cache folder; `ferlab serve` and `ferlab export --format web` find it there."""
    from ferlab.deploy.web.ondevice import setup_runtime

    with console.status("npm ci (LiteRT.js)"):
        modules = setup_runtime()
    console.print(f"installed LiteRT.js in {modules}")
