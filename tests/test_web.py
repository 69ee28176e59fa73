"""`ferlab serve`: the JSON API and WebSocket (TestClient), the page in headless Chromium with a fake camera
fed from FER2013 faces, and 20 concurrent WebSocket clients against the real server, all with a model
trained on real FER2013.

Run with ``-s`` to see the browser test's screenshot path and the load test's latency and frames/s.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FER2013, REPO, require

from bench.web_load import write_y4m

CHROMIUM = Path(os.environ.get("FERLAB_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
MAX_BYTES, MAX_PIXELS = 150_000, 1_000_000  # the TestClient app's limits (the 640x480 scenes fit)

pytestmark = pytest.mark.real_data


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def classifier(trained_run):
    from ferlab.deploy.formats import load_classifier

    return load_classifier(trained_run)


@pytest.fixture(scope="module")
def scene(classifier, fer2013_paper5):
    """A 640x480 JPEG with one FER2013 test face (200 px, centred at 320,240) that the model classifies
    confidently: (jpeg bytes, gray 48x48 face, the model's label on the original face, the detector's box)."""
    import cv2

    from bench.web_load import compose
    from ferlab.deploy.detection.haar import HaarDetector

    faces, _ = fer2013_paper5.arrays("test")
    faces = faces[:300, ..., 0]
    probs = classifier.predict(faces)
    detector = HaarDetector()
    for i in np.argsort(-probs.max(1))[:40]:
        ok, jpeg = cv2.imencode(".jpg", compose(faces[i], 320, 240, 200, seed=1), [cv2.IMWRITE_JPEG_QUALITY, 95])
        found = detector.detect(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
        if ok and len(found) == 1 and abs(found[0].x + found[0].w / 2 - 320) < 20:
            return jpeg.tobytes(), faces[i], classifier.classes[int(probs[i].argmax())], found[0].box
    pytest.fail("none of the 40 most confidently classified test faces was detected once when pasted on a background")


@pytest.fixture(scope="module")
def client(classifier):
    from fastapi.testclient import TestClient

    from ferlab.deploy.detection.haar import HaarDetector
    from ferlab.deploy.web import create_app

    app = create_app(classifier, HaarDetector, max_upload_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, workers=2)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def served(trained_run, tmp_path_factory):
    """The real thing: `ferlab serve --model RUN` in a subprocess on a free loopback port; its base URL."""
    from bench.web_load import free_port, start_server, stop_server

    log = tmp_path_factory.mktemp("serve") / "serve.log"
    try:
        proc = start_server(trained_run, free_port(), workers=None, log=log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    port = proc.args[proc.args.index("--port") + 1]
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def png_bytes(array: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


# ------------------------------------------------------------------------------------------------ HTTP API
def test_health(client, classifier):
    info = client.get("/api/health").json()
    assert info["status"] == "ok"
    assert info["classes"] == classifier.classes == ["angry", "anxious", "happy", "neutral", "sad"]
    assert info["backend"] == "keras" and info["detector"] == "haar"
    assert Path(info["model"]) == classifier.path
    assert (info["max_upload_bytes"], info["max_pixels"]) == (MAX_BYTES, MAX_PIXELS)


def test_page_and_docs_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="live-faces"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("static/app.js", "static/style.css"):  # everything the page loads comes from the server
        assert f'"{asset}"' in page.text and client.get(f"/{asset}").status_code == 200
    assert "http://" not in page.text.replace("http://localhost", "") and "https://" not in page.text
    assert client.get("/docs").status_code == 200
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("method, path, status", [("get", "/nope", 404), ("get", "/api/predict", 405),
                                                  ("post", "/api/predict?whole_image=maybe", 422)])
def test_framework_errors_have_the_documented_body(client, method, path, status):
    """Unknown paths, wrong methods and bad query values answer {"error", "status"} like every other error."""
    response = getattr(client, method)(path)
    body = response.json()
    assert response.status_code == status and set(body) == {"error", "status"} and body["status"] == status, body
    assert isinstance(body["error"], str) and body["error"]


def test_docs_load_nothing_from_other_origins(client):
    """Swagger UI comes from the installed swagger-ui-bundle package, so /docs works without internet."""
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for asset in ("docs-assets/swagger-ui-bundle.js", "docs-assets/swagger-ui.css"):
        assert asset in page.text and client.get(f"/{asset}").status_code == 200


def test_predict_returns_the_face_with_the_models_label(client, scene, classifier):
    jpeg, _, label, box = scene
    response = client.post("/api/predict", files={"file": ("face.jpg", jpeg, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (640, 480)
    assert len(body["faces"]) == 1
    found = body["faces"][0]
    assert found["label"] == label  # the model's label on the original 48x48 face
    assert found["box"] == list(box)
    assert list(found["probabilities"]) == classifier.classes
    assert abs(sum(found["probabilities"].values()) - 1) < 1e-3
    assert found["confidence"] == max(found["probabilities"].values())
    assert set(body["timings_ms"]) >= {"decode", "detect", "crop", "classify", "server"}

    raw = client.post("/api/predict", content=jpeg, headers={"content-type": "image/jpeg"})  # raw body too
    assert raw.status_code == 200 and raw.json()["faces"][0]["label"] == label


def test_predict_whole_image_classifies_a_face_crop(client, scene, classifier):
    _, face, label, _ = scene
    crop = client.post("/api/predict?whole_image=true", files={"file": ("face.png", png_bytes(face), "image/png")})
    assert crop.status_code == 200, crop.text
    [found] = crop.json()["faces"]
    assert found["box"] == [0, 0, 48, 48] and found["label"] == label
    expected = classifier.predict(face[None])[0]
    assert np.allclose(list(found["probabilities"].values()), expected, atol=1e-3)


def test_too_many_bytes_is_413(client):
    big = b"\xff\xd8" + bytes(MAX_BYTES + 1000)
    declared = client.post("/api/predict", files={"file": ("big.jpg", big, "image/jpeg")})
    assert declared.status_code == 413, declared.text
    assert "over the limit" in declared.json()["error"]

    def chunks():  # no Content-Length: the limit holds on the bytes actually streamed
        for _ in range(10):
            yield bytes(MAX_BYTES // 4)

    streamed = client.post("/api/predict", content=chunks(), headers={"content-type": "image/jpeg"})
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert streamed.status_code == 413 and streamed.json()["status"] == 413


def test_too_many_pixels_is_413(client):
    data = png_bytes(np.zeros((1100, 1000), np.uint8))  # 1.1 megapixels in a few kB
    assert len(data) < MAX_BYTES
    response = client.post("/api/predict", files={"file": ("wide.png", data, "image/png")})
    assert response.status_code == 413
    assert "1000x1100" in response.json()["error"] and "pixels" in response.json()["error"]


def test_not_an_image_is_415(client):
    text = client.post("/api/predict", files={"file": ("notes.txt", b"just some text\n" * 20, "text/plain")})
    assert text.status_code == 415 and "not an image" in text.json()["error"]
    from PIL import Image

    gif = io.BytesIO()
    Image.new("L", (60, 60)).save(gif, format="GIF")
    response = client.post("/api/predict", files={"file": ("a.gif", gif.getvalue(), "image/gif")})
    assert response.status_code == 415 and "GIF" in response.json()["error"]
    assert client.post("/api/predict", files={"file": ("x.jpg", b"", "image/jpeg")}).status_code == 400


# ------------------------------------------------------------------------------------------------ WebSocket
def test_websocket_answers_bad_frames_and_keeps_the_connection(client, scene):
    jpeg, _, label, box = scene
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"id": "bad-1"}))
        ws.send_bytes(b"this is not an image")
        answer = ws.receive_json()
        assert answer["id"] == "bad-1" and answer["status"] == 415 and "not an image" in answer["error"]

        ws.send_text(json.dumps({"id": 2}))
        ws.send_bytes(b"\xff\xd8" + bytes(MAX_BYTES))
        assert ws.receive_json() == {"id": 2, "status": 413, "error": f"frame is {MAX_BYTES + 2:,} bytes, over the "
                                                                       f"limit of {MAX_BYTES:,}"}
        ws.send_text("not json")
        assert ws.receive_json()["id"] is None

        ws.send_text(json.dumps({"id": "good-3"}))
        ws.send_bytes(jpeg)
        answer = ws.receive_json()
        assert answer["id"] == "good-3" and "error" not in answer
        assert [f["label"] for f in answer["faces"]] == [label] and answer["faces"][0]["box"] == list(box)

        ws.send_bytes(jpeg)  # untagged: the connection's frame count
        assert ws.receive_json()["id"] == 4


def test_each_camera_client_has_its_own_stream_detector(classifier, scene):
    """Every WebSocket client gets a detector of its own from ``camera_detector_factory`` (set up for a
    stream, following that client's faces), which sees that client's frames only; still images use the
    per-thread detectors."""
    from fastapi.testclient import TestClient

    from ferlab.deploy.detection import make_detector
    from ferlab.deploy.web import create_app

    made = []

    def camera_detector():
        detector = make_detector("haar", stream=True)
        made.append(detector)
        return detector

    jpeg, _, label, box = scene
    app = create_app(classifier, lambda: make_detector("haar"), camera_detector_factory=camera_detector, workers=2)
    with TestClient(app) as test_client:
        with test_client.websocket_connect("/ws") as a, test_client.websocket_connect("/ws") as b:
            for ws in (a, b, a, b, a):
                ws.send_bytes(jpeg)
                faces = ws.receive_json()["faces"]
                assert [f["label"] for f in faces] == [label] and faces[0]["box"] == list(box)
        still = test_client.post("/api/predict", files={"file": ("x.jpg", jpeg, "image/jpeg")}).json()
    assert [f["label"] for f in still["faces"]] == [label]
    assert sorted(d.frames for d in made) == [2, 3]  # one detector per client, fed that client's frames alone
    assert [d.detections for d in sorted(made, key=lambda d: d.frames)] == [1, 1]  # Haar's: every 3rd frame


def test_websocket_never_queues_frames(client, scene):
    """A client that does not wait gets every frame answered once; waiting frames are replaced, not queued."""
    jpeg = scene[0]
    with client.websocket_connect("/ws") as ws:
        for i in range(4):
            ws.send_text(json.dumps({"id": i}))
            ws.send_bytes(jpeg)
        answers = {}
        while len(answers) < 4:
            answer = ws.receive_json()
            assert answer["id"] not in answers
            answers[answer["id"]] = answer
    assert "faces" in answers[3]  # the newest frame is always analysed
    assert all("faces" in a or a == {"id": i, "skipped": True} for i, a in answers.items())


# ------------------------------------------------------------------------------------------------ CLI
def test_serve_cli_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from ferlab.cli import app
    from ferlab.errors import FerlabError

    def error_of(*args: str) -> str:
        result = CliRunner().invoke(app, ["serve", *args])
        assert isinstance(result.exception, FerlabError), (result.exception, result.output)
        return str(result.exception)

    assert error_of("--model", "no-such-model").startswith("--model no-such-model: no such file or directory, and not a zoo model")
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    assert "give both" in error_of("--model", str(tmp_path), "--ssl-certfile", str(cert))
    assert "no such file" in error_of("--model", str(tmp_path), "--ssl-certfile", str(cert), "--ssl-keyfile", "nope.pem")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert "cannot listen" in error_of("--model", str(tmp_path), "--port", str(busy.getsockname()[1]))
    assert "no model.keras" in error_of("--model", str(tmp_path), "--port", "0")


# ------------------------------------------------------------------------------------------------ browser
def wait_until(page, function: str, timeout: float) -> None:
    """Poll a JS function until it returns true (page.wait_for_function evaluates strings with eval, which
    the page's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        assert time.monotonic() < deadline, f"not true after {timeout} s: {function}"
        time.sleep(0.1)


def test_browser_live_camera_and_still_image(served, scene, tmp_path):
    """Headless Chromium, its fake camera playing FER2013 faces: the page shows a labelled box in 10 s."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (set FERLAB_CHROMIUM; CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    import cv2

    from bench.web_load import compose

    jpeg, face, label, _ = scene
    frames = [cv2.cvtColor(compose(face, 320 + dx, 240, 200, seed=1), cv2.COLOR_BGR2GRAY) for dx in (0, 4, 8, 4)]
    video = write_y4m(tmp_path / "camera.y4m", frames)
    still = tmp_path / "still.jpg"
    still.write_bytes(jpeg)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-live.png"

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            problems = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(served + "/")
            page.locator("#bars .bar").nth(4).wait_for()  # /api/health answered: one bar per class
            # The camera hint is one line of text (its words and the bold button name used to stack as grid cells).
            assert page.evaluate("(() => { const s = document.querySelector('#camera-hint > span');"
                                 " return s !== null && s.getClientRects().length === 1; })()")
            started = time.perf_counter()
            page.click("#start")
            page.wait_for_selector("#live-faces li[data-label]", timeout=10_000)
            first_answer_s = time.perf_counter() - started
            item = page.locator("#live-faces li[data-label]").first
            live_label = item.get_attribute("data-label")
            x, y, w, h = map(int, item.get_attribute("data-box").split(","))
            assert live_label in ["angry", "anxious", "happy", "neutral", "sad"]
            assert abs(x + w / 2 - 324) < 30 and abs(y + h / 2 - 240) < 30 and 150 < w < 260, (x, y, w, h)
            drawn = page.evaluate("""() => { const c = document.getElementById('overlay');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""")
            assert drawn > 500, "no box drawn on the overlay canvas"
            wait_until(page, "() => Number(document.getElementById('live-stage').dataset.frames) >= 3",
                       timeout=20)  # it keeps streaming
            page.set_input_files("#file", str(still))
            page.wait_for_selector("#still-faces li[data-label]", timeout=20_000)
            still_label = page.locator("#still-faces li").first.get_attribute("data-label")
            assert still_label == label
            stats = page.inner_text(".stats").replace("\n", " ")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    print(f"\nbrowser: first labelled box {first_answer_s:.1f} s after Start ({live_label}, box {x},{y},{w}x{h}; "
          f"still image: {still_label}); {stats}; screenshot: {shot}")


# ------------------------------------------------------------------------------------------------ load
def test_20_websocket_clients_without_cross_talk(served):
    """20 clients stream their own face (each at its own place) for 10 s: every answer is their own."""
    require(FER2013, "FER2013 image folder")
    from bench.web_load import describe, make_scenes, run_load

    scenes = make_scenes(20)
    assert len({s.box for s in scenes}) == 20
    summary, clients = run_load(served, scenes, seconds=10)
    print("\nload: " + describe(summary))
    problems = [p for c in clients for p in c.problems]
    assert summary["errors"] == 0 and summary["crosstalk"] == 0 and summary["mismatches"] == 0, problems
    assert summary["min_frames_per_client"] >= 1  # every client was served
    assert summary["frames"] >= 20
