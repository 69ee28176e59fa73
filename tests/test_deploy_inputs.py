"""Inputs the deployment commands refuse, the same way everywhere (one decoder: ferlab.deploy.media), and the
serve command's port handling. Each case was a defect: a truncated JPEG analysed silently by predict but
refused by the web API, a 20000x20000 PNG decoded with no pixel limit, --port 70000 as a traceback,
--port 0 printed as port 0, summary tables squeezed to 80 columns when stderr is a pipe."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.real_data]


def error_of(*args: str) -> str:
    from typer.testing import CliRunner

    from ferlab.cli import app
    from ferlab.errors import FerlabError

    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, FerlabError), (result.exception, result.output)
    assert "\n" not in str(result.exception)
    return str(result.exception)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says width x height, with no pixel data: enough for any header check."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def truncated_jpeg(tmp_path_factory) -> Path:
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3)).astype(np.uint8)
    data = cv2.imencode(".jpg", frame)[1].tobytes()
    path = tmp_path_factory.mktemp("bad") / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_predict_refuses_a_truncated_jpeg(truncated_jpeg, trained_run, tmp_path):
    text = error_of("predict", str(truncated_jpeg), "--model", str(trained_run), "--out", str(tmp_path / "r.csv"))
    assert str(truncated_jpeg) in text and "truncated or corrupt" in text
    assert not (tmp_path / "r.csv").exists()


def test_predict_refuses_too_many_pixels_before_decoding(trained_run, tmp_path):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header_only(20000, 20000))
    text = error_of("predict", str(huge), "--model", str(trained_run), "--out", str(tmp_path / "r.csv"))
    assert str(huge) in text and "400,000,000 pixels" in text and "--max-pixels" in text
    assert not (tmp_path / "r.csv").exists()


def test_web_and_predict_use_one_decoder(truncated_jpeg):
    """The same bytes get the same verdict from the web app's decoder and predict's file reader."""
    from ferlab.deploy.media import ImageError, WEB_IMAGE_FORMATS, decode_image, read_image
    from ferlab.errors import FerlabError

    with pytest.raises(ImageError) as web:
        decode_image(truncated_jpeg.read_bytes(), formats=WEB_IMAGE_FORMATS)
    with pytest.raises(FerlabError) as files:
        read_image(truncated_jpeg)
    assert web.value.status == 400 and str(web.value) in str(files.value)


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_port_out_of_range_is_one_line(port, trained_run):
    assert error_of("serve", "--model", str(trained_run), "--port", port).startswith(f"--port {port}: not a TCP port")


def test_serve_port_zero_reports_the_port_it_got(trained_run, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "ferlab.cli", "serve", "--model", str(trained_run), "--port", "0",
                             "--log-level", "warning"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=tmp_path)
    try:
        deadline, port, seen = time.monotonic() + 120, None, []
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"open http://localhost:(\d+)/", line)
            port = int(match.group(1)) if match else None
        assert port and port != 0, "".join(seen)
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"nothing answers on the printed port {port}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_tables_keep_their_width_when_stderr_is_a_pipe(trained_run, tmp_path):
    """predict without --out: CSV on stdout, the per-file summary table on stderr, full file names."""
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "portrait-of-somebody-smiling-at-the-camera.png"), np.full((64, 64, 3), 90, np.uint8))
    result = subprocess.run([sys.executable, "-m", "ferlab.cli", "predict", "photos", "--model", str(trained_run)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "portrait-of-somebody-smiling-at-the-camera.png" in result.stderr, result.stderr
    assert max(len(line) for line in result.stderr.splitlines()) > 80
