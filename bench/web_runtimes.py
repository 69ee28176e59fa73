"""LiteRT.js vs ONNX Runtime Web in headless Chromium: the two browser runtimes on-device mode could use.

The same models in both, one thread each (a page without cross-origin isolation has no threads):
BlazeFace short-range (MediaPipe's .tflite; its ONNX twin converted by tf2onnx here) and the default zoo
classifier (its float32 .tflite and .onnx, and the int8 .tflite). Median ms per call over ``--runs``
calls after warm-up, one face / one 128 px frame per call, in the same page and run. LiteRT.js comes from
ferlab's lockfile (npm/node_modules); ONNX Runtime Web is installed into a temporary folder at the version
below, for this comparison only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_table
from bench.web_load import free_port

ORT_WEB = "onnxruntime-web@1.30.0"
CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><meta charset="utf-8"><pre id="out">running</pre>
<script type="importmap">{"imports": {"@litertjs/wasm-utils": "./litert/@litertjs/wasm-utils/dist/index.js"}}</script>
<script type="module">
import * as litert from "./litert/@litertjs/core/dist/index.js";
import * as ort from "./ort/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
const RUNS = %(runs)d, WARMUP = 10;
const models = %(models)s;
const out = {};
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("./ort/node_modules/onnxruntime-web/dist/", location.href).href;
await litert.loadLiteRt("./litert/@litertjs/core/wasm/");
function median(xs) { xs.sort((a, b) => a - b); return xs[xs.length >> 1]; }
for (const m of models) {
  const data = m.dtype === "uint8" ? new Uint8Array(m.shape.reduce((a, b) => a * b)).fill(128)
                                   : new Float32Array(m.shape.reduce((a, b) => a * b)).fill(0.1);
  const times = [];
  if (m.runtime === "litert") {
    const model = await litert.loadAndCompile(m.url, {accelerator: "wasm"});
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const t = performance.now();
      const input = new litert.Tensor(data, m.shape);
      const res = await model.run(input);
      res.forEach((r) => r.toTypedArray());
      input.delete(); res.forEach((r) => r.delete());
      if (i >= WARMUP) times.push(performance.now() - t);
    }
  } else {
    const session = await ort.InferenceSession.create(m.url, {executionProviders: ["wasm"]});
    const name = session.inputNames[0];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const t = performance.now();
      const res = await session.run({[name]: new ort.Tensor(m.dtype, data, m.shape)});
      Object.values(res).forEach((r) => r.data);
      if (i >= WARMUP) times.push(performance.now() - t);
    }
  }
  out[m.key] = median(times);
}
document.getElementById("out").textContent = JSON.stringify(out);
</script>"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench web-runtimes", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed calls per model")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from ferlab.deploy.detection.blazeface import SHORT_RANGE, packaged_model
    from ferlab.deploy.formats.litert import with_batch_of_one
    from ferlab.deploy.web.ondevice import SETUP_HINT, runtime_modules
    from ferlab.zoo import default_model

    modules = runtime_modules()
    if modules is None:
        sys.exit(f"LiteRT.js is not installed: {SETUP_HINT}")
    entry = default_model()
    with tempfile.TemporaryDirectory(prefix="bench-web-runtimes-") as tmp:
        root = Path(tmp)
        shutil.copytree(modules, root / "litert")
        (root / "ort").mkdir()
        subprocess.run(["npm", "install", "--prefix", str(root / "ort"), "--ignore-scripts", "--no-audit", "--no-fund",
                        ORT_WEB], check=True, capture_output=True)
        detector = packaged_model(SHORT_RANGE.file)
        shutil.copyfile(detector, root / "blazeface.tflite")
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(detector), "--output",
                        str(root / "blazeface.onnx"), "--opset", "13"], check=True, capture_output=True)
        for kind in ("litert", "litert-int8"):
            (root / f"{kind}.tflite").write_bytes(with_batch_of_one(entry.file(kind).read_bytes()))
        shutil.copyfile(entry.file("onnx"), root / "classifier.onnx")
        models = [
            {"key": "blazeface litert", "runtime": "litert", "url": "blazeface.tflite", "dtype": "float32", "shape": [1, 128, 128, 3]},
            {"key": "blazeface onnx", "runtime": "ort", "url": "blazeface.onnx", "dtype": "float32", "shape": [1, 128, 128, 3]},
            {"key": f"{entry.name} fp32 litert", "runtime": "litert", "url": "litert.tflite", "dtype": "float32", "shape": [1, 48, 48, 1]},
            {"key": f"{entry.name} fp32 onnx", "runtime": "ort", "url": "classifier.onnx", "dtype": "float32", "shape": [1, 48, 48, 1]},
            {"key": f"{entry.name} int8 litert", "runtime": "litert", "url": "litert-int8.tflite", "dtype": "uint8", "shape": [1, 48, 48, 1]},
        ]
        (root / "index.html").write_text(PAGE % {"runs": args.runs, "models": json.dumps(models)})
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page()
                errors = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{port}/index.html")
                deadline = time.monotonic() + 600
                while page.inner_text("#out") == "running" and not errors and time.monotonic() < deadline:
                    time.sleep(0.5)
                if errors or page.inner_text("#out") == "running":
                    sys.exit(f"the benchmark page failed: {errors or 'no result in 600 s'}")
                result = json.loads(page.inner_text("#out"))
                browser.close()
        finally:
            server.terminate()
    rows = []
    for key, ms in result.items():
        model, runtime = key.rsplit(" ", 1)
        rows.append({"model": model, "runtime": {"litert": "LiteRT.js 2.5.3", "onnx": ORT_WEB}[runtime], "ms_per_call": ms})
        print(f"{key}: {ms:.2f} ms")
    path = write_table("web_runtimes", rows, key=("model", "runtime"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
