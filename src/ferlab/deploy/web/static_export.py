"""``ferlab export MODEL --format web --out DIR``: the on-device page as a static folder.

Everything the page needs, with no Python behind it: the page and ferlab's JavaScript, LiteRT.js (the two
WebAssembly builds it chooses between without threads or JSPI: relaxed-SIMD and compat), MediaPipe's
BlazeFace and the classifier (batch fixed to one), the class list, the PWA manifest, icons and service
worker. Any static file server hosts it (``python -m http.server`` included); the camera needs a secure
context, so serve it over HTTPS, or open it on localhost. The folder is written beside ``DIR`` and renamed
into place: a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ferlab.deploy.web.ondevice import RUNTIME_MODULE, RUNTIME_PACKAGE, SETUP_HINT, prepare_ondevice
from ferlab.errors import FerlabError
from ferlab.io import atomic_dir

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = ["app.js", "style.css", "manifest.webmanifest", "icons/icon-192.png", "icons/icon-512.png",
              "ondevice/blazeface.js", "ondevice/engine.js", "ondevice/imaging.js", "ondevice/tracking.js",
              "ondevice/worker.js"]
RUNTIME_FILES = [RUNTIME_MODULE, f"{RUNTIME_PACKAGE}/package.json",
                 *(f"{RUNTIME_PACKAGE}/wasm/{name}.{ext}" for name in ("litert_wasm_internal", "litert_wasm_compat_internal")
                   for ext in ("js", "wasm")),
                 "@litertjs/wasm-utils/dist/index.js", "@litertjs/wasm-utils/package.json"]
README = """# {name}: facial expression recognition in the browser

A static site made by `ferlab export {name} --format web`: the camera's frames are analysed on this
device (LiteRT.js, WebAssembly) and never sent anywhere. Host the folder with any static file server, e.g.
`python -m http.server 8000` here, then open http://localhost:8000/ (browsers open the camera only on
localhost or over HTTPS: put it behind HTTPS for phones). After one visit it is installable (add to home
screen) and works offline.

- classifier: `ondevice/models/classifier.tflite` ({classes}), from {source}
- detector: `ondevice/models/detector.tflite`, MediaPipe's BlazeFace short-range (Apache-2.0)
- runtime: `ondevice/runtime/@litertjs/` (LiteRT.js {version}, Apache-2.0)
{licence}"""


def export_web(model_file: Path, classes: list[str], out: Path, *, name: str, licence: str = "",
               min_confidence: float = 0.0, overwrite: bool = False) -> Path:
    """Write the static on-device site for ``model_file`` (.tflite) into ``out``; returns ``out``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FerlabError(f"--out {out}: already exists; choose another --out or pass --overwrite")
    if out.exists() and not _is_web_export(out):  # --overwrite replaces an earlier export, nothing else
        raise FerlabError(f"--out {out}: exists and is not a ferlab web export; choose another --out")
    device = prepare_ondevice(Path(model_file))
    if not device.available:
        raise FerlabError(f"--format web: {device.why}")
    with atomic_dir(out, overwrite=True) as staging:  # existence was checked above
        _copy(STATIC / "index.html", staging / "index.html")
        for rel in PAGE_FILES:
            _copy(STATIC / rel, staging / "static" / rel)
        _copy(STATIC / "ondevice" / "sw.js", staging / "sw.js")
        for rel in RUNTIME_FILES:
            source = device.modules / rel
            if not source.is_file():
                raise FerlabError(f"--format web: {source} is missing from the installed LiteRT.js; {SETUP_HINT}")
            _copy(source, staging / "ondevice" / "runtime" / rel)
        (staging / "ondevice" / "runtime" / RUNTIME_MODULE).write_bytes(device.runtime_module())
        _copy(device.detector, staging / "ondevice" / "models" / "detector.tflite")
        (staging / "ondevice" / "models" / "classifier.tflite").write_bytes(device.classifier)
        manifest = {**device.manifest(classes, min_confidence), "static": True, "model": name}
        (staging / "ondevice" / "manifest.json").write_text(json.dumps(manifest, indent=1))
        version = json.loads((device.modules / RUNTIME_PACKAGE / "package.json").read_text())["version"]
        (staging / "README.md").write_text(README.format(
            name=name, classes=", ".join(classes), source=Path(model_file).name, version=version,
            licence=f"\n**Licence of the classifier's training data.** {licence}\n" if licence else ""))
    return out


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _is_web_export(folder: Path) -> bool:
    try:
        return json.loads((folder / "ondevice" / "manifest.json").read_text()).get("static") is True
    except (OSError, ValueError):
        return False
