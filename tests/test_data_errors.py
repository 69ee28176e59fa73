"""Bad input: one clear error line naming the file/class/field and the fix, exit 2, no output left behind."""

from __future__ import annotations

import os
import stat
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
    assert_clean_failure(r, out, "--split", "'paper', 'official', 'stratified' or 'test'")


def assert_refused(result, *needles: str) -> None:
    """One ``error:`` line naming ``needles``, exit 2 (for failures that leave an existing --out in place)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


SMALL = ("--source", "synthetic", "--synthetic-per-class", "10", "--split", "stratified")  # 60 images, about a second


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


def test_overwrite_refuses_a_directory_that_is_not_a_prepared_data_set(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user's file")
    r = ferlab("data", "prepare", *SMALL, "--out", str(out), "--overwrite", cwd=tmp_path)
    assert_refused(r, f"--out {out}", "not a prepared data set", "mine.txt", "choose another --out")
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "nothing else written or left behind"


def test_overwrite_refuses_a_file_and_a_prepared_set_holding_a_users_file(tmp_path):
    file = tmp_path / "out.txt"
    file.write_text("user's file")
    r = ferlab("data", "prepare", *SMALL, "--out", str(file), "--overwrite", cwd=tmp_path)
    assert_refused(r, f"--out {file}", "not a directory")
    assert file.read_text() == "user's file" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]

    out = tmp_path / "out"
    assert ferlab("data", "prepare", *SMALL, "--out", str(out), cwd=tmp_path).returncode == 0
    (out / "notes.txt").write_text("user's notes")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = ferlab("data", "prepare", *SMALL, "--seed", "1", "--out", str(out), "--overwrite", cwd=tmp_path)
    assert_refused(r, f"--out {out}", "notes.txt")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_overwrite_replaces_a_prepared_data_set_or_an_empty_directory(tmp_path):
    from ferlab.data.prepare import PreparedData

    out = tmp_path / "out"
    assert ferlab("data", "prepare", *SMALL, "--out", str(out), cwd=tmp_path).returncode == 0
    first = PreparedData(out).fingerprint
    assert ferlab("data", "info", str(out), cwd=tmp_path).returncode == 0  # adds montage.png: still ferlab's own
    r = ferlab("data", "prepare", *SMALL, "--seed", "1", "--out", str(out), "--overwrite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert PreparedData(out).fingerprint != first
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ferlab("data", "prepare", *SMALL, "--out", str(empty), "--overwrite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert PreparedData(empty).meta["totals"]["test"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"], "no temporary or old copies left"


def test_prepared_directory_follows_the_umask(tmp_path):
    """Files and the directory get what mkdir/open would give under the umask (mkdtemp alone gives 0700)."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "ferlab.cli", "data", "prepare", *SMALL, "--out", str(out)],
                       check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       preexec_fn=lambda: os.umask(0o027))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {
        "images.npy": 0o640, "manifest.csv": 0o640, "data.json": 0o640}


@pytest.mark.parametrize("overwrite", [False, True])
def test_existing_output_is_checked_before_the_source_is_loaded(tmp_path, overwrite):
    """A wrong --out fails at once, not after loading (minutes for FER2013): here the load itself would fail."""
    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user's file")
    r = ferlab("data", "prepare", "--source", str(csv), "--out", str(out), *(["--overwrite"] if overwrite else []),
               cwd=tmp_path)
    assert_refused(r, f"--out {out}", "mine.txt" if overwrite else "--overwrite")
    assert "pixels" not in r.stderr
    assert (out / "mine.txt").read_text() == "user's file"


def test_empty_class_after_skip_bad_is_a_warning_recorded_in_data_json(tmp_path):
    """Every test/sad file unreadable: the set is still usable (train and the other classes are fine), but a
    model trained and scored on it never is on 'sad' -- the user must hear about it."""
    root = make_folder(tmp_path / "faces", n=6)
    for f in (root / "test" / "sad").iterdir():
        f.write_bytes(b"not an image")
    proto = tmp_path / "three.toml"
    proto.write_text('classes = ["angry", "happy", "sad"]\n[map]\nangry = "angry"\nhappy = "happy"\nsad = "sad"\n')
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(root), "--protocol", str(proto), "--split", "official", "--skip-bad",
               "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, r.stderr
    for needle in ("test", "'sad'", "6 unreadable file(s)", "--skip-bad"):
        assert needle in warnings[0], (needle, warnings[0])
    from ferlab.data.prepare import PreparedData

    data = PreparedData(out)
    assert data.meta["counts"]["test"] == {"angry": 6, "happy": 6, "sad": 0}
    assert data.meta["counts"]["train"] == {"angry": 5, "happy": 5, "sad": 5}  # 1 of 6 each carved off to val
    assert data.meta["warnings"] == [warnings[0].removeprefix("warning: ")]
    r = ferlab("data", "info", str(out), cwd=tmp_path)
    assert r.returncode == 0 and warnings[0] in r.stderr.splitlines(), r.stderr


def test_no_warning_when_every_class_is_in_every_split(tmp_path):
    out = tmp_path / "out"
    r = ferlab("data", "prepare", *SMALL, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0 and not [line for line in r.stderr.splitlines() if line.startswith("warning")], r.stderr
    from ferlab.data.prepare import PreparedData

    assert PreparedData(out).meta["warnings"] == []


def test_empty_train_split_is_a_warning_pointing_at_split_test(tmp_path):
    out = tmp_path / "out"
    r = ferlab("data", "prepare", *SMALL, "--test-fraction", "0.99", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert any("train split is empty" in w and "--split test" in w for w in warnings), r.stderr


def test_empty_test_split_is_refused(tmp_path):
    """No test image at all: nothing could score a model on the set, so nothing is written."""
    root = tmp_path / "faces"
    rng = np.random.default_rng(0)
    for c in ("angry", "happy"):
        (root / c).mkdir(parents=True)
        for i in range(2):  # round(0.2 x 2) = 0 test images per class
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), "L").save(root / c / f"{i}.png")
    proto = tmp_path / "two.toml"
    proto.write_text('classes = ["angry", "happy"]\n[map]\nangry = "angry"\nhappy = "happy"\n')
    out = tmp_path / "out"
    r = ferlab("data", "prepare", "--source", str(root), "--protocol", str(proto), "--split", "stratified",
               "--out", str(out), cwd=tmp_path)
    assert_clean_failure(r, out, "test split", "--test-fraction")


def test_vote_distribution_hand_computed_and_no_votes_is_one_line(tmp_path):
    """FER+'s "probability" targets: single votes dropped, unknown / not-a-face left out, the protocol's
    merges applied, rows normalised; a face with no vote left falls back to its majority label."""
    import numpy as np

    from ferlab.data.ferplus import vote_distribution
    from ferlab.data.prepare import PrepareConfig, prepare
    from ferlab.data.protocols import get_protocol
    from ferlab.errors import FerlabError

    # neutral happiness surprise sadness anger disgust fear contempt unknown NF
    votes = np.array([[6, 0, 2, 1, 0, 0, 0, 0, 1, 0],   # sadness has 1 vote: dropped; unknown left out
                      [0, 0, 3, 0, 0, 0, 3, 0, 0, 4],   # paper5: fear + surprise -> anxious; NF left out
                      [1, 1, 0, 0, 0, 0, 0, 1, 7, 0]])  # every emotion a single vote: fallback
    p5 = get_protocol("paper5")  # angry anxious happy neutral sad
    dist = vote_distribution(votes, p5.classes, lambda c: p5.map.get(c) or None, np.array([3, 1, 2]))
    assert np.allclose(dist, [[0, 0.25, 0, 0.75, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]])

    data = prepare(PrepareConfig(source="synthetic", synthetic_per_class=20, split={"kind": "stratified"}), tmp_path / "synth")
    with pytest.raises(FerlabError, match="no annotator votes in manifest.csv.*--labels ferplus"):
        data.label_distribution("train")


def test_data_info_writes_a_montage_only_where_asked(tmp_path):
    """A raw source gets no montage unless --montage names a new file (nothing lands in the current directory,
    nothing existing is replaced); a prepared data set gets DIR/montage.png, its own folder."""
    root = make_folder(tmp_path / "faces", n=4)
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = ferlab("data", "info", str(root), cwd=work)
    assert r.returncode == 0, r.stderr
    assert "montage: not written (give --montage PATH" in r.stdout + r.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # cwd and source untouched

    r = ferlab("data", "info", str(root), "--montage", "m.png", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "m.png").read_bytes().startswith(b"\x89PNG")
    (work / "m.png").write_bytes(b"my picture")
    r = ferlab("data", "info", str(root), "--montage", "m.png", cwd=work)
    assert_refused(r, "--montage m.png", "already exists")
    assert (work / "m.png").read_bytes() == b"my picture"

    out = tmp_path / "prepared"
    assert ferlab("data", "prepare", *SMALL, "--out", str(out), cwd=work).returncode == 0
    for _ in range(2):  # the prepared set's own montage is rewritten, as ferlab's own file
        r = ferlab("data", "info", str(out), cwd=work)
        assert r.returncode == 0, r.stderr
        assert (out / "montage.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in work.iterdir()) == ["m.png"]
