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
# static/'s files that go to the site's root, not under static/: the page, and the service worker (its scope
# is the folder it is served from). Every other file there is the page's, copied as the server serves it.
AT_ROOT = {"index.html": "index.html", "ondevice/sw.js": "sw.js"}
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
        _copy_page(staging)
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


def page_files() -> list[str]:
    """The page's files under ``static/`` (its scripts and modules, style, icons), relative, in a stable order:
    what the folder holds, so a new module ships without a list to update."""
    files = (p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file())
    return sorted(rel for rel in files if rel not in AT_ROOT)


def _copy_page(site: Path) -> None:
    for rel, target in AT_ROOT.items():
        _copy(STATIC / rel, site / target)
    for rel in page_files():
        _copy(STATIC / rel, site / "static" / rel)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _is_web_export(folder: Path) -> bool:
    try:
        return json.loads((folder / "ondevice" / "manifest.json").read_text()).get("static") is True
    except (OSError, ValueError):
        return False
