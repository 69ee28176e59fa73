"""On-device mode of `ferlab serve`'s page and the static web export, in headless Chromium with a fake camera.

The zoo's default model is served; the browser runs BlazeFace and the classifier itself (LiteRT.js). The
tests count what reaches the server (nothing, in on-device mode), compare the browser's probabilities with
the Python runtime's on the same frames, reload the page with the server gone, and serve the static export
with `python -m http.server` alone. Needs LiteRT.js installed by npm (`npm ci --prefix
src/ferlab/deploy/web/npm`, part of the README's test command) and Chromium.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import FER2013, REPO, require
from test_web import ARTIFACTS, CHROMIUM, wait_until

from bench.web_load import write_y4m

from ferlab.deploy.web.ondevice import SETUP_HINT, runtime_modules


@pytest.fixture(scope="module")
def browser_kit():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (set FERLAB_CHROMIUM; CI installs it)")
    if runtime_modules() is None:
        pytest.skip(f"LiteRT.js is not installed: {SETUP_HINT}")
    return pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    """A fake camera: a 640x480 scene with the astronaut's face (scikit-image), moving a little."""
    import cv2
    from skimage import data

    face = cv2.cvtColor(cv2.resize(data.astronaut()[30:250, 120:340], (200, 200), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_RGB2GRAY)
    frames = []
    for dx in (0, 4, 8, 4):
        frame = np.full((480, 640), 100, np.uint8)
        frame[140:340, 220 + dx:420 + dx] = face
        frames.append(frame)
    return write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m", frames)


def launch(pw, video):
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"])


def watch(page) -> list[str]:
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    return problems


def start_and_wait(page, frames: int = 10) -> None:
    page.locator("#bars .bar").nth(4).wait_for(timeout=30_000)
    page.click("#start")
    page.wait_for_selector("#live-faces li[data-label]", timeout=60_000)
    wait_until(page, f"() => Number(document.getElementById('live-stage').dataset.frames) >= {frames}", timeout=60)


def test_on_device_mode_labels_faces_without_sending_a_frame_and_works_offline(browser_kit, camera):
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.formats import load_classifier
    from ferlab.deploy.web import create_app, serve_in_thread
    from ferlab.zoo import default_model

    app = create_app(load_classifier(default_model().model_file()), lambda: make_detector("blazeface"))
    engine = app.state.engine
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_kit.sync_playwright() as pw:
        browser = launch(pw, camera)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            problems = watch(page)
            with serve_in_thread(app) as url:
                page.goto(url + "/")
                start_and_wait(page)
                assert page.inner_text("#mode") == "on this device", page.inner_text("#mode-why")
                label = page.locator("#live-faces li").first.get_attribute("data-label")
                x, y, w, h = map(int, page.locator("#live-faces li").first.get_attribute("data-box").split(","))
                frames = int(page.evaluate("document.getElementById('live-stage').dataset.frames"))
                stats = page.inner_text(".stats").replace("\n", " ")
                page.screenshot(path=str(ARTIFACTS / "web-ondevice.png"), full_page=True)
                assert engine.batcher.calls == 0 and engine.batcher.faces == 0  # no face classified by the server
                page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
                time.sleep(2)  # the page hands the service worker what it loaded
            # The server is gone: the page, LiteRT.js and the models come from the service worker's cache.
            context.set_offline(True)
            page.reload()
            start_and_wait(page, frames=3)
            offline_label = page.locator("#live-faces li").first.get_attribute("data-label")
        finally:
            browser.close()
    print(f"\non-device: {frames} frames, first face {label} at {x},{y} ({w}x{h}); {stats}; offline reload: "
          f"{offline_label}; server classified {engine.batcher.faces} faces")
    assert label == offline_label == "happy"
    assert abs(x + w / 2 - 324) < 40 and abs(y + h / 2 - 240) < 40 and 80 < w < 260, (x, y, w, h)
    assert not problems, problems


@pytest.mark.real_data
def test_the_browsers_probabilities_match_the_python_runtimes(browser_kit, tmp_path):
    """FER2013 test faces pasted into 640x480 frames (PNG): the browser detects and classifies each frame as a
    still image; Python does the same with the same files. Same faces, same top-1 on >= 99% of them."""
    import cv2

    from bench.web_load import compose
    from ferlab.data.sources import load_image_folder
    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.detection.base import crop_face
    from ferlab.deploy.formats import load_classifier
    from ferlab.deploy.web import create_app, serve_in_thread
    from ferlab.zoo import default_model

    test_faces = load_image_folder(require(FER2013, "FER2013 image folder") / "test").images[::60][:60]
    rng = np.random.default_rng(0)
    pngs = []
    for k, face in enumerate(test_faces):
        frame = compose(face, int(rng.integers(150, 490)), int(rng.integers(130, 350)), int(rng.integers(140, 220)), seed=k)
        ok, png = cv2.imencode(".png", frame)
        pngs.append(png.tobytes())
    classifier = load_classifier(default_model().model_file())
    detector = make_detector("blazeface")  # the browser's still search too: the pyramid, crops levelled by the eyes
    python = []
    for png in pngs:
        frame = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        found = detector.detect(frame)
        crops = np.stack([crop_face(frame, f, margin=detector.margin) for f in found]) if found else None
        python.append([(f.box, p) for f, p in zip(found, classifier.predict(crops))] if found else [])

    app = create_app(classifier, lambda: make_detector("blazeface"))
    with browser_kit.sync_playwright() as pw, serve_in_thread(app) as url:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context(service_workers="block").new_page()  # routes see every request
            problems = watch(page)
            page.route("**/test-frames/*", lambda route: route.fulfill(
                body=pngs[int(route.request.url.rsplit("/", 1)[1])], content_type="image/png"))
            page.goto(url + "/")
            page.locator("#bars .bar").nth(4).wait_for(timeout=30_000)
            browser_faces = page.evaluate("""async (n) => {
                const manifest = await (await fetch("ondevice/manifest.json")).json();
                for (const k of ["runtime", "wasm", "detector", "classifier"]) manifest[k] = new URL(manifest[k], location.href).href;
                const { createEngine } = await import("./static/ondevice/engine.js");
                const engine = await createEngine(manifest);
                const out = [];
                for (let k = 0; k < n; k++) {
                  const bitmap = await createImageBitmap(await (await fetch(`test-frames/${k}`)).blob());
                  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
                  const ctx = canvas.getContext("2d");
                  ctx.drawImage(bitmap, 0, 0);
                  const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
                  const answer = await engine.analyze(pixels, bitmap.width, bitmap.height, { still: true });
                  out.push(answer.faces.map((f) => [f.box, f.raw_probabilities]));
                }
                return out;
            }""", len(pngs))
        finally:
            browser.close()
    same_boxes = same_top1 = total = 0
    max_delta = 0.0
    for mine, theirs in zip(browser_faces, python):
        total += len(theirs)
        for (box, p), (pbox, pp) in zip(mine, theirs):
            if tuple(box) != tuple(pbox):
                continue
            same_boxes += 1
            same_top1 += int(np.argmax(p) == np.argmax(pp))
            max_delta = max(max_delta, float(np.abs(np.asarray(p) - pp).max()))
    print(f"\n{len(pngs)} frames, {total} faces found by Python; the browser: {same_boxes} same boxes, "
          f"{same_top1} same top-1, max |delta p| {max_delta:.4f}")
    assert total >= 0.8 * len(pngs)
    assert same_boxes == total == sum(len(f) for f in browser_faces)
    assert same_top1 >= 0.99 * total
    assert not problems, problems


def test_the_static_export_runs_from_a_plain_file_server(browser_kit, camera, tmp_path):
    from bench.web_load import free_port

    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "export", "fast-fer7", "--format", "web", "--out",
                             str(site)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    again = subprocess.run([sys.executable, "-m", "ferlab.cli", "export", "fast-fer7", "--format", "web", "--out",
                            str(site)], capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(site)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with browser_kit.sync_playwright() as pw:
            browser = launch(pw, camera)
            try:
                page = browser.new_page()
                problems = watch(page)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        page.goto(f"http://127.0.0.1:{port}/")
                        break
                    except Exception:  # the file server is still starting
                        assert time.monotonic() < deadline
                        time.sleep(0.2)
                start_and_wait(page, frames=5)
                info, label = page.inner_text("#model-info"), page.locator("#live-faces li").first.get_attribute("data-label")
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    print(f"\nstatic site: {size / 1e6:.1f} MB; {info}; first face: {label}")
    assert "static site" in info and label == "happy"
    assert not problems, problems


def test_web_setup_installs_the_pinned_runtime_and_explains_a_missing_npm(tmp_path):
    import json
    import os
    import shutil

    from conftest import assert_one_line_error

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (apt-get install npm)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "web-setup"], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    installed = next((tmp_path / "cache" / "ferlab").glob("web-runtime-*/node_modules/@litertjs/core/package.json"))
    lock = json.loads((REPO / "src/ferlab/deploy/web/npm/package-lock.json").read_text())
    assert json.loads(installed.read_text())["version"] == lock["packages"]["node_modules/@litertjs/core"]["version"]
    no_npm = subprocess.run([sys.executable, "-m", "ferlab.cli", "web-setup"], capture_output=True, text=True, timeout=120,
                            check=False, env={**env, "PATH": str(tmp_path / "empty")})
    assert_one_line_error(no_npm, "web-setup", "npm not found", code=2)
