"""The web app behind ``ferlab serve``: a page for the camera and still images, a JSON API and a WebSocket.

- ``GET /``: one offline page (``static/``): opens the device camera and draws boxes, labels and emotion
  bars. On-device mode (the default where the browser and server support it,
  :mod:`~ferlab.deploy.web.ondevice`): the browser runs the detector and the classifier itself from
  ``/ondevice/...`` and no frame leaves it. Server mode: JPEG frames over the WebSocket
  (:mod:`~ferlab.deploy.web.protocol`). Still images go to ``/api/predict``.
- ``POST /api/predict``: an image (multipart field ``file``, or the raw body with an ``image/*`` content
  type) -> ``{width, height, faces: [{box, score, label, confidence, probabilities}], timings_ms}``.
- ``GET /api/health``: model path, backend, classes, detector and limits.
- ``GET /docs``: the OpenAPI docs, with Swagger UI served from the installed ``swagger-ui-bundle``
  package (no CDN: the app works on a network without internet); ``/openapi.json`` for other tools.
  FastAPI's ReDoc page is off: it loads its script from a CDN, and no registry package ships it.

Limits: uploads and frames over ``max_upload_bytes`` (declared and streamed) or ``max_pixels`` (read from
the image header, before decoding) -> 413; not a JPEG, PNG, WebP or BMP image -> 415 (one decoder for
every app: :func:`ferlab.deploy.media.decode_image`). Every HTTP error body, the framework's own 404, 405
and 422 and an unexpected 500 included, is ``{"error": message, "status": code}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferlab.deploy.detection import FaceDetector
from ferlab.deploy.formats.base import FaceClassifier
from ferlab.deploy.media import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES, ImageError
from ferlab.deploy.web.engine import DEFAULT_ANALYSIS_SIDE, Engine
from ferlab.deploy.web.ondevice import RUNTIME_MODULE, OnDevice, prepare_ondevice
from ferlab.deploy.web.protocol import FrameStream
from ferlab.deploy.web.uploads import read_upload
from ferlab.face import blank_faces

log = logging.getLogger("ferlab.web")

STATIC = Path(__file__).resolve().parent / "static"
# The page loads nothing from other origins: it works offline, and this header makes sure it stays so.
# 'wasm-unsafe-eval' lets it compile LiteRT.js's WebAssembly; its workers are scripts of this origin.
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
            "connect-src 'self'; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
            "object-src 'none'; base-uri 'none'")
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}}}},
    "responses": {"413": {"description": "Too many bytes or pixels"},
                  "415": {"description": "Not a JPEG, PNG, WebP or BMP image"}}}


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def create_app(classifier: FaceClassifier, detector_factory: Callable[[], FaceDetector], *,
               camera_detector_factory: Callable[[], FaceDetector] | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               workers: int | None = None, max_batch: int = 32, analysis_side: int = DEFAULT_ANALYSIS_SIDE,
               warmup: bool = True, min_confidence: float = 0.0, ondevice: bool = True) -> FastAPI:
    """The FastAPI app serving ``classifier`` with a detector made by ``detector_factory`` in each worker thread.

    ``max_upload_bytes`` bounds a still image and a WebSocket frame; ``max_pixels`` their width x height;
    ``workers`` is the number of frame threads (default: the CPU count, 2 to 8). ``warmup`` classifies one
    blank face first, so the first request does not pay the model's start-up. ``camera_detector_factory``
    makes the detector of each camera client (WebSocket), one per client, set up for consecutive frames
    (``make_detector(..., stream=True)``); None: ``detector_factory``. ``min_confidence``: faces below it
    are labelled "uncertain" (:class:`ferlab.deploy.pipeline.FacePipeline`). ``ondevice``: offer the page's
    on-device mode when the model is a .tflite file and LiteRT.js is installed (False: server mode only).
    """
    detector_name = detector_factory().name  # fails here, not on the first request, when the detector cannot load
    engine = Engine(classifier, detector_factory, camera_detector_factory=camera_detector_factory, max_pixels=max_pixels, workers=workers, max_batch=max_batch,
                    analysis_side=analysis_side, min_confidence=min_confidence)
    if warmup:
        classifier.predict(blank_faces(1))
    device = prepare_ondevice(Path(classifier.path)) if ondevice else OnDevice("turned off (--no-ondevice)")
    page = (STATIC / "index.html").read_text()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        engine.start()
        try:
            yield
        finally:
            engine.close()

    app = FastAPI(title="ferlab", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Facial expression recognition: detect faces in an image and classify each one. "
                              "The page at / streams the camera over the WebSocket /ws.")
    app.state.engine = engine
    app.state.ondevice = device
    app.state.limits = {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}
    _add_error_handlers(app)
    _add_docs(app)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_ondevice(app, device, list(classifier.classes), min_confidence)

    @app.get("/api/health", summary="Model, backend, classes, detector and limits")
    async def health() -> dict:
        return {"status": "ok", "model": str(classifier.path), "backend": classifier.backend,
                "classes": list(classifier.classes), "detector": detector_name, **app.state.limits,
                "ondevice": {"available": device.available, "why": device.why},
                "workers": engine.workers, "classifier_calls": engine.batcher.calls,
                "faces_classified": engine.batcher.faces}

    @app.post("/api/predict", summary="Detect and classify the faces in one image", openapi_extra=PREDICT_BODY)
    async def predict(request: Request, whole_image: bool = False):
        """The faces in an image, largest first: box ``[x, y, w, h]`` in the image's pixels, detector score,
        top label, its probability and every class's probability; plus the image's size and timings (ms).

        Send the image as the multipart field ``file``, or as the raw body with an ``image/*`` content type.
        ``whole_image=true``: the image is already a face crop (such as FER2013's 48x48 faces, in which the
        detector often finds nothing): classify all of it as one face.
        """
        try:
            return await engine.run(await read_upload(request, max_upload_bytes), whole_image)
        except ImageError as exc:
            return error_response(exc.status, str(exc))

    @app.websocket("/ws")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await FrameStream(websocket, engine, max_upload_bytes).serve()

    return app


def _add_ondevice(app: FastAPI, device: OnDevice, classes: list[str], min_confidence: float) -> None:
    """/ondevice/...: the manifest, LiteRT.js from its npm folder and the two models (when available)."""

    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> FileResponse:  # at the root: its scope is the whole app
        return FileResponse(STATIC / "ondevice" / "sw.js", media_type="text/javascript",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/ondevice/manifest.json", include_in_schema=False)
    async def manifest() -> dict:
        return device.manifest(classes, min_confidence)

    if not device.available:
        return
    runtime_module = device.runtime_module()

    @app.get(f"/ondevice/runtime/{RUNTIME_MODULE}", include_in_schema=False)
    async def runtime() -> Response:  # its bare import made relative (OnDevice.runtime_module); before the mount
        return Response(runtime_module, media_type="text/javascript")

    app.mount("/ondevice/runtime", StaticFiles(directory=str(device.modules)), name="ondevice-runtime")

    @app.get("/ondevice/models/detector.tflite", include_in_schema=False)
    async def detector_file() -> FileResponse:
        return FileResponse(device.detector, media_type="application/octet-stream")

    @app.get("/ondevice/models/classifier.tflite", include_in_schema=False)
    async def classifier_file() -> Response:
        return Response(device.classifier, media_type="application/octet-stream")


def _add_error_handlers(app: FastAPI) -> None:
    """The framework's own errors (unknown path 404, wrong method 405 with its Allow header, bad query 422)
    and unexpected failures (500) in the documented form."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "not found: see /docs for the API", 405: "method not allowed: see /docs for the API"}
        return error_response(exc.status_code, message.get(exc.status_code, str(exc.detail)), exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return error_response(500, f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return error_response(422, f"{where}: {first.get('msg', 'invalid request')}")


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the installed swagger-ui-bundle package (Apache-2.0), not a CDN."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="ferlab API",
                                   swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="docs-assets/swagger-ui.css",
                                   swagger_favicon_url="docs-assets/favicon-32x32.png")
