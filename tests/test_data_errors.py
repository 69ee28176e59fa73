"""Bad input: one clear error line naming the file/class/field and the fix, exit 2, no output left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def ferlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlab.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def make_folder(root: Path, classes=("angry", "happy", "sad"), n=12, size=(64, 64), mode="L") -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                shape = size[::-1] + ((3,) if mode == "RGB" else ())
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(d / f"{i}.png")
    return root


def assert_clean_failure(result, out: Path, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temporary output left behind"


def test_missing_path(tmp_path):
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(tmp_path / "nope"), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "nope", "no such file")


def test_empty_class_folder(tmp_path):
    root = make_folder(tmp_path / "faces")
    for f in (root / "train" / "sad").iterdir():
        f.unlink()
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(root), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "train/sad", "empty")


def test_corrupt_file_fails_and_skip_bad_lists_it(tmp_path):
    root = make_folder(tmp_path / "faces")
    (root / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "test" / "sad" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    args = ["data", "prepare", "--source", str(root), "--protocol", "fer7", "--split", "official", "--out", str(out)]
    r = ferlab(*args, cwd=tmp_path)
    assert_clean_failure(r, out, "test/sad/notes.txt", "unreadable image", "--skip-bad")  # test/ is read first
    r = ferlab(*args, "--skip-bad", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "skipped 2 unreadable file(s)" in r.stderr and "broken.jpg" in r.stderr and "notes.txt" in r.stderr
    assert (out / "images.npy").is_file()


def test_csv_missing_columns(tmp_path):
    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,Usage\n0,Training\n")
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(csv), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "fer2013.csv", "missing column(s) pixels")


@pytest.mark.parametrize("pixels,what", [("1 2 3", "3 values"), (" ".join(["7"] * 2303 + ["x"]), "non-numeric"),
                                         (" ".join(["300"] * 2304), "outside 0-255")])
def test_csv_malformed_pixels(tmp_path, pixels, what):
    csv = tmp_path / "fer2013.csv"
    good = " ".join(["5"] * 2304)
    csv.write_text(f"emotion,pixels,Usage\n0,{good},Training\n3,{pixels},PublicTest\n")
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(csv), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "row 3", "pixels", what)


def test_more_images_per_class_than_exist(tmp_path):
    root = make_folder(tmp_path / "faces")
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(root), "--protocol", "fer7", "--train-per-class", "20",
               "--test-per-class", "10", "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "class 'angry' has 24 usable images", "lower the counts")


def test_unknown_protocol(tmp_path):
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--protocol", "paper6", "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "unknown protocol 'paper6'", "fer7, paper5, ferplus8")


def test_unknown_class_folder(tmp_path):
    root = make_folder(tmp_path / "faces", classes=("angry", "happy", "bored"))
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(root), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "unknown class folder 'bored'", "rename it")


def test_protocol_file_with_unknown_class(tmp_path):
    proto = tmp_path / "valence.toml"
    proto.write_text('classes = ["negative", "positive"]\n[map]\nangry = "negative"\nhappy = "upbeat"\n')
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--protocol", str(proto), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "valence.toml", "'upbeat'", "not one of classes")


def test_bad_option_value_names_the_option(tmp_path):
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--split", "random", "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "--split", "'paper', 'official' or 'stratified'")


def test_existing_output_is_never_replaced_without_overwrite(tmp_path):
    root = make_folder(tmp_path / "faces")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user's file")
    r = ferlab("data", "prepare", "--source", str(root), "--split", "official", "--protocol", "fer7", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert (out / "mine.txt").read_text() == "user's file"


def test_user_protocol_and_any_image_folder(tmp_path):
    """A flat <class>/ folder of colour images of any size, with aliases, under a user protocol."""
    root = tmp_path / "mine"
    rng = np.random.default_rng(1)
    for folder in ("Anger", "happiness", "Sadness", "neutral"):
        (root / folder).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8), "RGB").save(root / folder / f"{i}.jpg")
    proto = tmp_path / "valence3.toml"
    proto.write_text('classes = ["negative", "neutral", "positive"]\n[map]\nangry = "negative"\nsad = "negative"\n'
                     'neutral = "neutral"\nhappy = "positive"\nfear = ""\ndisgust = ""\nsurprise = ""\n')
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(root), "--protocol", str(proto), "--split", "stratified", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from ferlab.data.prepare import PreparedData

    data = PreparedData(out)
    assert data.classes == ("negative", "neutral", "positive")
    assert data.images.shape == (40, 48, 48)
    assert data.meta["totals"] == {"train": 28, "val": 4, "test": 8}
    assert set(data.manifest["conversion"]) == {"RGB->L; centre crop 90x120->90x90; resize 90->48"}
