"""On-device vs server mode of `ferlab serve`'s page in headless Chromium: frames/s, per-stage latency and
the server's CPU per client.

One 640x480 fake camera (a FER2013 test face, 200 px, 30 frames/s) feeds every page. For each mode, one
page streams for ``--seconds`` after a warm-up; the frames it analysed and its stage times are read from
the page, the server's CPU time from /proc; the modes alternate ``--repeats`` times and each number is the
median of its runs. Then ``--clients`` pages run on-device at once and the server's CPU is measured again
once they have loaded. Both modes and the crowd run in the same run on the same machine; the ratio
on-device / server is the comparable number. Neither mode waits for a new camera picture: above the
camera's 30 frames/s a page analyses some pictures twice, so frames/s measures how many frames a second
each mode can analyse (its headroom), not how many different pictures it saw.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED, write_table
from bench.web_load import compose, free_port, start_server, stop_server, write_y4m

CHROMIUM = Path(os.environ.get("FERLAB_CHROMIUM", "/usr/bin/chromium"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fake_camera(folder: Path) -> Path:
    import cv2

    happy = sorted((SHARED / "data" / "fer2013" / "test" / "happy").glob("*.jpg"))[0]
    face = cv2.imread(str(happy), cv2.IMREAD_GRAYSCALE)
    frames = [cv2.cvtColor(compose(face, 320 + dx, 240, 200, seed=1), cv2.COLOR_BGR2GRAY) for dx in (0, 3, 6, 3)]
    return write_y4m(folder / "camera.y4m", frames, fps=30)


def page_stats(page) -> dict:
    return page.evaluate("""() => { const d = document.getElementById('live-stage').dataset;
        return {frames: Number(d.frames || 0), detect: Number(d.detectMs || NaN), classify: Number(d.classifyMs || NaN),
                server_ms: Number(document.getElementById('server-ms').textContent) || NaN,
                latency: Number(document.getElementById('latency').textContent) || NaN,
                mode: document.getElementById('mode').dataset.mode}; }""")


def stream(page, url: str, mode: str, warmup: float, seconds: float, server_pid: int) -> dict:
    page.goto(url)
    page.locator("#bars .bar").nth(1).wait_for(timeout=60_000)
    page.select_option("#mode-select", mode)
    page.click("#start")
    page.wait_for_selector("#live-faces li[data-label]", timeout=120_000)
    time.sleep(warmup)
    first, cpu0, t0 = page_stats(page), cpu_seconds(server_pid), time.monotonic()
    samples = []
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        samples.append(page_stats(page))
    last, cpu1, t1 = page_stats(page), cpu_seconds(server_pid), time.monotonic()
    page.click("#stop")
    def mean(key: str) -> float:  # NaN where the mode has no such stage
        values = [s[key] for s in samples if s[key] == s[key]]
        return float(np.mean(values)) if values else float("nan")

    return {"mode": last["mode"], "clients": 1, "frames_per_s": (last["frames"] - first["frames"]) / (t1 - t0),
            "detect_ms": mean("detect"), "classify_ms": mean("classify"), "server_ms": mean("server_ms"),
            "latency_ms": mean("latency"), "server_cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0)}


def median_row(runs: list[dict]) -> dict:
    """One row for a mode's repeated runs: the median of each number, and the range of frames/s."""
    row = {key: float(np.median([r[key] for r in runs])) if isinstance(runs[0][key], float) else runs[0][key]
           for key in runs[0]}
    fps = [r["frames_per_s"] for r in runs]
    return {**row, "runs": len(runs), "frames_per_s_min": min(fps), "frames_per_s_max": max(fps)}


def crowd(browser, url: str, clients: int, seconds: float, server_pid: int) -> dict:
    pages = []
    for _ in range(clients):
        page = browser.new_page()
        page.goto(url)
        pages.append(page)
    for page in pages:
        page.locator("#bars .bar").nth(1).wait_for(timeout=120_000)
        page.click("#start")
    for page in pages:
        page.wait_for_selector("#live-faces li[data-label]", timeout=300_000)
    first = [page_stats(p)["frames"] for p in pages]
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(server_pid), time.monotonic()
    frames = sum(page_stats(p)["frames"] - f for p, f in zip(pages, first))
    modes = {page_stats(p)["mode"] for p in pages}
    for page in pages:
        page.close()
    return {"mode": "+".join(sorted(modes)), "clients": clients, "frames_per_s": frames / (t1 - t0),
            "server_cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench web-ondevice", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="--model for ferlab serve (default: the default zoo model)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per mode")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds streamed before measuring")
    parser.add_argument("--clients", type=int, default=20, help="on-device pages at once for the server-CPU check")
    parser.add_argument("--repeats", type=int, default=3, help="on-device and server runs, alternated; medians reported")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from ferlab.zoo import default_model

    model = Path(args.model) if args.model else default_model().model_file()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-web-ondevice-") as tmp:
        video = fake_camera(Path(tmp))
        port = free_port()
        proc = start_server(model, port, None, Path(tmp) / "serve.log")
        url = f"http://127.0.0.1:{port}/"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={video}"])
                try:
                    runs = {"ondevice": [], "server": []}
                    for _ in range(args.repeats):  # alternated: a slow spell of this noisy machine hits both modes
                        for mode in runs:
                            row = stream(browser.new_page(), url, mode, args.warmup, args.seconds, proc.pid)
                            print(row, flush=True)
                            runs[mode].append(row)
                    rows += [median_row(runs[mode]) for mode in runs]
                    if args.clients:
                        row = crowd(browser, url, args.clients, args.seconds, proc.pid)
                        print(row, flush=True)
                        rows.append(row)
                finally:
                    browser.close()
        finally:
            stop_server(proc)
    ondevice, server = rows[0]["frames_per_s"], rows[1]["frames_per_s"]
    print(f"on-device / server frames/s: {ondevice / server:.2f}x")
    for row in rows:
        row.update(model=model.name, ratio_to_server_mode=row["frames_per_s"] / server if row["clients"] == 1 else None)
    path = write_table("web_ondevice", rows, key=("mode", "clients", "model"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
