"""The web app behind ``ferlab serve``: a page for the camera and still images, a JSON API and a WebSocket.

- ``GET /``: one offline page (``ferlab/deploy/static``): opens the device camera, streams JPEG frames over
  the WebSocket and draws boxes, labels and emotion bars; also uploads a still image to ``/api/predict``.
- ``POST /api/predict``: an image (multipart field ``file``, or the raw body with an ``image/*`` content
  type) -> ``{width, height, faces: [{box, score, label, confidence, probabilities}], timings_ms}``.
- ``GET /api/health``: model path, backend, classes, detector and limits. OpenAPI docs at ``/docs``.
- ``WS /ws``: the client sends binary JPEG/PNG frames, each optionally preceded by a text message
  ``{"id": ...}`` (a string or number, echoed back); a frame without one gets the connection's frame
  count (1, 2, ...). Every frame is answered with ``{"id", "width", "height", "faces", "timings_ms"}``, or
  ``{"id", "error", "status"}`` for a bad frame (not an image, too many bytes or pixels); the connection
  stays open. A frame that arrives while the previous one still waits (the client did not wait for its
  answer) replaces it, and the replaced one is answered ``{"id", "skipped": true}``: the server never
  builds a queue.

Limits: uploads and frames over ``max_upload_bytes`` (``Content-Length`` and the bytes actually
streamed) or ``max_pixels`` (read from the image header, before decoding) -> 413; not a JPEG, PNG, WebP or
BMP image -> 415; every HTTP error body is ``{"error": message, "status": code}``.

Concurrency: decoding, detection and cropping run in a pool of worker threads (one detector per thread;
the event loop only moves bytes), and every classifier call goes through one thread that batches the faces
of frames waiting at the same time into one ``predict`` call (a Keras model is not safe to call from
several threads at once). Each WebSocket connection keeps its own state, so clients never see each other's
answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from ferlab.deploy.detect import Face, FaceDetector, crop_face
from ferlab.deploy.pipeline import FaceResult, analyze_frame
from ferlab.deploy.runtime import FaceClassifier, as_face_batch

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 50-megapixel phone JPEG is 10-20 MB
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_ANALYSIS_SIDE = 1280  # larger images are shrunk to this longest side for detection (boxes map back)
MULTIPART_SLACK = 64 * 1024  # multipart headers and boundaries around the file, beyond max_upload_bytes
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
STATIC = Path(__file__).resolve().parent / "static"
# The page loads nothing from other origins: it works offline, and this header makes sure it stays so.
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
            "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'")

log = logging.getLogger("ferlab.web")


class ImageError(Exception):
    """An upload or frame the server refuses: ``status`` is the HTTP code (400, 413 or 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Image bytes -> BGR uint8, refusing non-images (415) and images over ``max_pixels`` (413) before the
    pixels are decoded. JPEG EXIF orientation is applied (the width and height are the upright image's)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            fmt, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        raise ImageError(413, f"image has too many pixels (over the limit of {max_pixels:,})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError(415, "not an image: send a JPEG, PNG, WebP or BMP file") from None
    if fmt not in IMAGE_FORMATS:
        raise ImageError(415, f"{fmt} images are not supported: send a JPEG, PNG, WebP or BMP file")
    if width * height > max_pixels:
        raise ImageError(413, f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                              f"{max_pixels:,}; send a smaller image")
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ImageError(400, f"{fmt} image could not be decoded (truncated or corrupt)")
    return frame


class BatchingClassifier:
    """Serialises calls to a classifier through one thread, batching the faces of concurrent callers.

    ``predict`` blocks the calling (worker) thread until its faces are classified. Requests waiting when
    the thread becomes free are classified together in one call of at most ``max_batch`` faces (more when
    one request alone has more). Calls on the same classifier object from several apps are serialised too.
    """

    _model_locks: ClassVar[dict[int, threading.Lock]] = {}
    _locks_lock = threading.Lock()

    def __init__(self, classifier: FaceClassifier, max_batch: int = 32):
        self.classifier = classifier
        self.classes = classifier.classes
        self.max_batch = max_batch
        with self._locks_lock:
            self._model_lock = self._model_locks.setdefault(id(classifier), threading.Lock())
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.calls = 0  # classifier calls and faces classified, for tests and benchmarks
        self.faces = 0

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="ferlab-classify", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
        self._thread = None

    def predict(self, faces: np.ndarray) -> np.ndarray:
        x = as_face_batch(faces)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        self.start()
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((x, done))
        return done.result()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items, count, stop = [item], len(item[0]), False
            while count < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                items.append(more)
                count += len(more[0])
            try:
                with self._model_lock:
                    probs = self.classifier.predict(np.concatenate([x for x, _ in items]))
                self.calls += 1
                self.faces += count
            except Exception as exc:  # noqa: BLE001  (hand the failure to every caller of this batch)
                for _, done in items:
                    done.set_exception(exc)
            else:
                start = 0
                for x, done in items:
                    done.set_result(probs[start:start + len(x)])
                    start += len(x)
            if stop:
                return


class Engine:
    """Image bytes -> JSON-ready result, in worker threads: decode, detect (one detector per thread),
    crop, classify (through :class:`BatchingClassifier`)."""

    def __init__(self, classifier: FaceClassifier, detector_factory: Callable[[], FaceDetector], *,
                 max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None, max_batch: int = 32,
                 analysis_side: int = DEFAULT_ANALYSIS_SIDE):
        self.classifier = classifier
        self.batcher = BatchingClassifier(classifier, max_batch=max_batch)
        self.detector_factory = detector_factory
        self.max_pixels = max_pixels
        self.workers = workers or max(2, min(8, os.cpu_count() or 2))
        self.analysis_side = analysis_side
        self._local = threading.local()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._start_lock = threading.Lock()

    def start(self) -> None:
        with self._start_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="ferlab-frame")
            self.batcher.start()

    def close(self) -> None:
        with self._start_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
            self.batcher.close()

    def _detector(self) -> FaceDetector:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = self.detector_factory()
        return detector

    def analyze(self, data: bytes, whole_image: bool = False) -> dict:
        """Blocking: bytes -> ``{width, height, faces, timings_ms}``; raises :class:`ImageError`.

        ``whole_image``: the image is already a face crop (FER2013 style): classify all of it, no detection.
        """
        start = time.perf_counter()
        frame = decode_image(data, self.max_pixels)
        decoded = time.perf_counter()
        height, width = frame.shape[:2]
        if whole_image:
            face = Face(0, 0, width, height)
            crop = crop_face(frame, face, margin=0.0)
            cropped = time.perf_counter()
            probs = self.batcher.predict(crop[None])
            done = time.perf_counter()
            timings = {"decode": decoded - start, "detect": 0.0, "crop": cropped - decoded, "classify": done - cropped}
            return {"width": width, "height": height,
                    "faces": [FaceResult(face, probs[0], self.classifier.classes).to_dict()],
                    "timings_ms": {k: round(v * 1e3, 2) for k, v in timings.items()}}
        scale = 1.0
        if max(height, width) > self.analysis_side:  # detection cost grows with the pixels; faces stay > 48 px
            scale = self.analysis_side / max(height, width)
            frame = cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        result = analyze_frame(frame, self._detector(), self.batcher, all_faces=True)
        faces = [face.to_dict() for face in result.faces]
        if scale != 1.0:
            for face in faces:
                face["box"] = [round(v / scale) for v in face["box"]]
        timings = {"decode": (decoded - start) * 1e3, **result.timings_ms}
        return {"width": width, "height": height, "faces": faces,
                "timings_ms": {k: round(v, 2) for k, v in timings.items()}}

    async def run(self, data: bytes, whole_image: bool = False) -> dict:
        """:meth:`analyze` in a worker thread; ``timings_ms.server`` is the time from the call to the result,
        waiting for a free worker included."""
        self.start()
        start = time.perf_counter()
        result = await asyncio.get_running_loop().run_in_executor(self._executor, self.analyze, data, whole_image)
        result["timings_ms"]["server"] = round((time.perf_counter() - start) * 1e3, 2)
        return result


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


class _BodyTooLarge(Exception):
    pass


def create_app(classifier: FaceClassifier, detector_factory: Callable[[], FaceDetector], *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               workers: int | None = None, max_batch: int = 32, analysis_side: int = DEFAULT_ANALYSIS_SIDE,
               warmup: bool = True) -> FastAPI:
    """The FastAPI app serving ``classifier`` with a detector made by ``detector_factory`` in each worker thread.

    ``max_upload_bytes`` bounds a still image and a WebSocket frame; ``max_pixels`` their width x height;
    ``workers`` is the number of frame threads (default: the CPU count, 2 to 8). ``warmup`` classifies one
    blank face first, so the first request does not pay the model's start-up.
    """
    detector_name = detector_factory().name  # fails here, not on the first request, when the detector cannot load
    engine = Engine(classifier, detector_factory, max_pixels=max_pixels, workers=workers, max_batch=max_batch,
                    analysis_side=analysis_side)
    if warmup:
        classifier.predict(np.zeros((1, 48, 48), np.uint8))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        engine.start()
        try:
            yield
        finally:
            engine.close()

    app = FastAPI(title="ferlab", lifespan=lifespan,
                  description="Facial expression recognition: detect faces in an image and classify each one. "
                              "The page at / streams the camera over the WebSocket /ws.")
    app.state.engine = engine
    app.state.limits = {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health", summary="Model, backend, classes, detector and limits")
    async def health() -> dict:
        return {"status": "ok", "model": str(classifier.path), "backend": classifier.backend,
                "classes": list(classifier.classes), "detector": detector_name, **app.state.limits,
                "workers": engine.workers, "classifier_calls": engine.batcher.calls,
                "faces_classified": engine.batcher.faces}

    @app.post("/api/predict", summary="Detect and classify the faces in one image",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                      "file": {"type": "string", "format": "binary"}}}},
                  "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                  "image/png": {"schema": {"type": "string", "format": "binary"}}}},
                  "responses": {"413": {"description": "Too many bytes or pixels"},
                                "415": {"description": "Not a JPEG, PNG, WebP or BMP image"}}})
    async def predict(request: Request, whole_image: bool = False):
        """The faces in an image, largest first: box ``[x, y, w, h]`` in the image's pixels, detector score,
        top label, its probability and every class's probability; plus the image's size and timings (ms).

        Send the image as the multipart field ``file``, or as the raw body with an ``image/*`` content type.
        ``whole_image=true``: the image is already a face crop (such as FER2013's 48x48 faces, in which the
        detector often finds nothing): classify all of it as one face.
        """
        body_limit = max_upload_bytes + MULTIPART_SLACK
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > body_limit:
            return _error(413, f"upload is {int(declared):,} bytes, over the limit of {max_upload_bytes:,}")
        received = 0

        async def limited_receive():  # the bytes actually streamed, whatever Content-Length said
            nonlocal received
            message = await request.receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > body_limit:
                    raise _BodyTooLarge
            return message

        body = Request(request.scope, limited_receive)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "multipart/form-data":
                form = await body.form(max_files=1, max_fields=10)
                try:
                    upload = form.get("file")
                    if not isinstance(upload, UploadFile):
                        upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
                    if upload is None:
                        return _error(400, "no file in the form: send the image as the multipart field 'file'")
                    data = await upload.read(max_upload_bytes + 1)
                finally:
                    await form.close()
            else:
                data = await body.body()
        except _BodyTooLarge:
            return _error(413, f"upload is over the limit of {max_upload_bytes:,} bytes")
        except StarletteHTTPException as exc:  # a malformed multipart body
            return _error(exc.status_code, f"bad multipart body: {exc.detail}")
        if len(data) > max_upload_bytes:
            return _error(413, f"upload is over the limit of {max_upload_bytes:,} bytes")
        if not data:
            return _error(400, "empty upload: send an image")
        try:
            return await engine.run(data, whole_image)
        except ImageError as exc:
            return _error(exc.status, str(exc))

    @app.websocket("/ws")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await _Connection(websocket, engine, max_upload_bytes).serve()

    return app


class _Connection:
    """One WebSocket client: its own frame ids, pending frame and answers (nothing shared between clients)."""

    def __init__(self, websocket: WebSocket, engine: Engine, max_bytes: int):
        self.websocket, self.engine, self.max_bytes = websocket, engine, max_bytes
        self.pending: tuple | None = None  # (id, bytes) of the frame waiting for the processor
        self.ready = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.frames = 0
        self.closed = False

    async def serve(self) -> None:
        processor = asyncio.create_task(self._process())
        try:
            await self._receive()
        except WebSocketDisconnect:
            pass
        finally:
            self.closed = True
            processor.cancel()
            with suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await processor

    async def _send(self, answer: dict) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.websocket.send_text(json.dumps(answer))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def _receive(self) -> None:
        next_id = None
        while not self.closed:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                try:
                    meta = json.loads(message["text"])
                except ValueError:
                    meta = None
                if not isinstance(meta, dict):
                    await self._send({"id": None, "error": 'a text message must be a JSON object such as {"id": 7}, '
                                                           "sent before the binary frame it describes", "status": 400})
                    continue
                frame_id = meta.get("id")
                if not (frame_id is None or isinstance(frame_id, (int, float, str))) or len(str(frame_id)) > 200:
                    await self._send({"id": None, "error": "a frame id must be a number or a string of at most "
                                                           "200 characters", "status": 400})
                    continue
                next_id = frame_id
                continue
            data = message.get("bytes") or b""
            self.frames += 1
            frame_id = next_id if next_id is not None else self.frames
            next_id = None
            if len(data) > self.max_bytes:
                await self._send({"id": frame_id, "error": f"frame is {len(data):,} bytes, over the limit of "
                                                           f"{self.max_bytes:,}", "status": 413})
                continue
            if not data:
                await self._send({"id": frame_id, "error": "empty frame: send a JPEG or PNG image", "status": 400})
                continue
            if self.pending is not None:  # the client did not wait: the newest frame wins
                await self._send({"id": self.pending[0], "skipped": True})
            self.pending = (frame_id, data)
            self.ready.set()

    async def _process(self) -> None:
        while not self.closed:
            await self.ready.wait()
            self.ready.clear()
            if self.pending is None:
                continue
            frame_id, data = self.pending
            self.pending = None
            try:
                answer = {"id": frame_id, **await self.engine.run(data)}
            except ImageError as exc:
                answer = {"id": frame_id, "error": str(exc), "status": exc.status}
            except Exception as exc:  # a bug must not end the connection silently
                log.exception("frame %r failed", frame_id)
                answer = {"id": frame_id, "error": f"internal error: {type(exc).__name__}: {exc}", "status": 500}
            await self._send(answer)


def ws_max_size(max_upload_bytes: int) -> int:
    """The WebSocket message size uvicorn accepts: above the frame limit, so an oversized frame gets an error
    answer instead of a closed connection (a message over this closes it, code 1009)."""
    return max(16 * 1024 * 1024, max_upload_bytes + MULTIPART_SLACK)


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread (tests, notebooks); yields its ``http://host:port`` URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    limit = app.state.limits["max_upload_bytes"] if hasattr(app.state, "limits") else DEFAULT_MAX_UPLOAD_BYTES
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, ws_max_size=ws_max_size(limit)))
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
