"""The web app's engine: image bytes -> faces, in worker threads, with one thread batching the classifier.

Decoding, detection and cropping run in a pool of worker threads (one detector per thread: OpenCV's
detectors keep state; the event loop only moves bytes), and every classifier call goes through
:class:`BatchingClassifier`, one thread that classifies the faces of frames waiting at the same time in one
``predict`` call (a Keras model is not safe to call from several threads at once, and models are much
faster per face in batches). Both halves are :class:`ferlab.deploy.pipeline.FacePipeline`'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from ferlab.deploy.detection import FaceDetector, make_detector
from ferlab.deploy.formats.base import FaceClassifier
from ferlab.deploy.media import DEFAULT_MAX_PIXELS, WEB_IMAGE_FORMATS, decode_image
from ferlab.deploy.pipeline import FacePipeline, check_min_confidence
from ferlab.face import as_face_batch

DEFAULT_ANALYSIS_SIDE = 1280  # larger images are shrunk to this longest side for detection (boxes map back)


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
        self._thread_lock = threading.Lock()
        self._closed = False
        self.calls = 0  # classifier calls and faces classified, for tests and benchmarks
        self.faces = 0

    def start(self) -> None:
        with self._thread_lock:  # worker threads call it too: never two consumers, never one after close()
            if self._closed:
                raise RuntimeError("the classifier batcher is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ferlab-classify", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._thread_lock:
            self._closed = True
            thread = self._thread
            if thread is not None and thread.is_alive():
                self._queue.put(None)
                thread.join(timeout=10)
            self._thread = None if thread is None or not thread.is_alive() else thread

    def reopen(self) -> None:
        """Allow :meth:`start` again after :meth:`close` (an app started a second time, as tests do)."""
        with self._thread_lock:
            self._closed = False

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


class _BatchedView:
    """What a pipeline sees of the :class:`BatchingClassifier`: the classifier's face, the batcher's predict."""

    def __init__(self, batcher: BatchingClassifier):
        self.batcher = batcher
        self.classes = batcher.classes

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return self.batcher.predict(faces)


class Engine:
    """Image bytes -> JSON-ready result, in worker threads: decode, detect (one detector per thread),
    crop, classify (through :class:`BatchingClassifier`)."""

    def __init__(self, classifier: FaceClassifier, detector_factory: Callable[[], FaceDetector], *,
                 camera_detector_factory: Callable[[], FaceDetector] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int | None = None, max_batch: int = 32,
                 analysis_side: int = DEFAULT_ANALYSIS_SIDE, min_confidence: float = 0.0):
        self.classifier = classifier
        self.min_confidence = check_min_confidence(min_confidence)
        self.batcher = BatchingClassifier(classifier, max_batch=max_batch)
        self.detector_factory = detector_factory
        self.camera_detector_factory = camera_detector_factory or detector_factory
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
            self.batcher.reopen()
            self.batcher.start()

    def close(self) -> None:
        with self._start_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
            self.batcher.close()

    def _pipeline(self, whole_image: bool) -> FacePipeline:
        """This worker thread's pipeline for still images (a detector per thread), classifying through the
        batcher."""
        name = "whole" if whole_image else "detect"
        pipeline = getattr(self._local, name, None)
        if pipeline is None:
            if whole_image:  # the image is already a face crop: all of it, framed as it is, no detection
                pipeline = FacePipeline(make_detector("whole"), _BatchedView(self.batcher),
                                        min_confidence=self.min_confidence)
            else:
                pipeline = FacePipeline(self.detector_factory(), _BatchedView(self.batcher), max_side=self.analysis_side,
                                        min_confidence=self.min_confidence)
            setattr(self._local, name, pipeline)
        return pipeline

    async def camera_pipeline(self) -> FacePipeline:
        """A pipeline for one client's camera stream: its own detector (made in a worker thread), which keeps
        what it saw in the client's last frame, as ``ferlab live``'s does; frames of one client are analysed
        one at a time, so it is never used by two threads at once."""
        self.start()
        detector = await asyncio.get_running_loop().run_in_executor(self._executor, self.camera_detector_factory)
        return FacePipeline(detector, _BatchedView(self.batcher), max_side=self.analysis_side,
                            min_confidence=self.min_confidence)

    def analyze(self, data: bytes, whole_image: bool = False, pipeline: FacePipeline | None = None) -> dict:
        """Blocking: bytes -> ``{width, height, faces, timings_ms}``; raises :class:`ImageError`.

        ``whole_image``: the image is already a face crop (FER2013 style): classify all of it, no detection.
        ``pipeline``: a camera stream's own (:meth:`camera_pipeline`); None: this thread's for still images.
        """
        start = time.perf_counter()
        frame = decode_image(data, self.max_pixels, WEB_IMAGE_FORMATS)
        decoded = time.perf_counter()
        height, width = frame.shape[:2]
        result = (pipeline or self._pipeline(whole_image)).analyze(frame)
        timings = {"decode": (decoded - start) * 1e3, **result.timings_ms}
        return {"width": width, "height": height, "faces": [face.to_dict() for face in result.faces],
                "timings_ms": {k: round(v, 2) for k, v in timings.items()}}

    async def run(self, data: bytes, whole_image: bool = False, pipeline: FacePipeline | None = None) -> dict:
        """:meth:`analyze` in a worker thread; ``timings_ms.server`` is the time from the call to the result,
        waiting for a free worker included."""
        self.start()
        start = time.perf_counter()
        result = await asyncio.get_running_loop().run_in_executor(self._executor, self.analyze, data, whole_image,
                                                                 pipeline)
        result["timings_ms"]["server"] = round((time.perf_counter() - start) * 1e3, 2)
        return result


