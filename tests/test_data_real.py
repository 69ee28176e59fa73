"""Acceptance tests of the data layer on the real FER2013 (../shared/data)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import FER2013, FERPLUS, require
from ferlab.data.prepare import PrepareConfig, PreparedData, prepare
from ferlab.data.splits import SplitConfig

pytestmark = pytest.mark.real_data


def _source_md_counts() -> dict[str, dict[str, int]]:
    """Per-class counts from the table in ../shared/data/fer2013/SOURCE.md."""
    text = (require(FER2013, "FER2013") / "SOURCE.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| split"))
    classes = [c.strip() for c in header.strip("|").split("|")][1:-1]
    counts = {}
    for split in ("train", "test"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {split} "))
        values = [int(v.strip().replace(",", "")) for v in row.strip("|").split("|")[1:-1]]
        counts[split] = dict(zip(classes, values))
    return counts


def _prepare(faces, tmp_path, name, **split):
    protocol = split.pop("protocol", "paper5")
    cfg = PrepareConfig(source=str(FER2013), protocol=protocol, split=SplitConfig(**split))
    return prepare(cfg, tmp_path / name, faces=faces)


def test_official_split_counts_match_source_md(fer2013_faces, tmp_path):
    expected = _source_md_counts()
    data = _prepare(fer2013_faces, tmp_path, "fer7", protocol="fer7", kind="official", allow_leaks=True, val_fraction=0)
    assert data.meta["totals"] == {"train": 28709, "val": 0, "test": 7178}
    for split in ("train", "test"):
        assert data.meta["counts"][split] == expected[split]
    public = data.manifest[data.manifest["split"] == "test"]["origin_split"].value_counts().to_dict()
    assert public == {"PublicTest": 3589, "PrivateTest": 3589}

    paper5 = _prepare(fer2013_faces, tmp_path, "paper5", kind="official", allow_leaks=True, val_fraction=0)
    assert paper5.meta["totals"] == {"train": 28273, "val": 0, "test": 7067}
    assert paper5.meta["counts"]["test"] == {"angry": 958, "anxious": 1855, "happy": 1774, "neutral": 1233, "sad": 1247}


def test_official_split_leak_free_keeps_test_copies(fer2013_faces, tmp_path):
    data = _prepare(fer2013_faces, tmp_path, "official", kind="official")
    m = data.manifest
    assert m["hash"].is_unique
    assert data.meta["dropped"]["blank_images_dropped"] == 12  # SOURCE.md: 12 all-black images, none disgust
    # Test keeps one copy of each distinct (non-conflicting, non-disgust, non-blank) test image.
    assert 6900 < (m["split"] == "test").sum() < 7067


def test_paper_split_balanced_leak_free_and_deterministic(fer2013_faces, tmp_path):
    a = _prepare(fer2013_faces, tmp_path, "a", kind="paper", seed=0)
    for cls, n in a.meta["counts"]["train"].items():
        assert n == 1500, cls
    assert set(a.meta["counts"]["test"].values()) == {1000}
    assert set(a.meta["counts"]["val"].values()) == {150}
    hashes = {s: set(a.manifest.loc[a.manifest["split"] == s, "hash"]) for s in ("train", "val", "test")}
    assert not hashes["train"] & hashes["test"] and not hashes["train"] & hashes["val"] and not hashes["val"] & hashes["test"]
    assert a.manifest["hash"].is_unique  # no image twice, even within a split

    b = _prepare(fer2013_faces, tmp_path, "b", kind="paper", seed=0)
    for name in ("images.npy", "manifest.csv", "data.json"):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name

    c = _prepare(fer2013_faces, tmp_path, "c", kind="paper", seed=1)
    assert (a.path / "images.npy").read_bytes() != (c.path / "images.npy").read_bytes()
    overlap = len(set(a.manifest["source"][a.manifest["split"] == "test"]) & set(c.manifest["source"][c.manifest["split"] == "test"]))
    assert overlap < 2500  # a different subset, not a reshuffle


def test_allow_leaks_reproduces_naive_sampling(fer2013_faces, tmp_path):
    leaky = _prepare(fer2013_faces, tmp_path, "leaky", kind="paper", seed=0, allow_leaks=True)
    m = leaky.manifest
    shared = set(m.loc[m["split"] == "train", "hash"]) & set(m.loc[m["split"] == "test", "hash"])
    print(f"naive paper split, seed 0: {len(shared)} pixel contents in both train and test")
    assert len(shared) > 0


def test_duplicate_statistics_agree_with_source_md(fer2013_faces, tmp_path):
    from ferlab.data.info import source_summary

    text = " ".join((FER2013 / "SOURCE.md").read_text().split())  # unwrap lines
    stats = source_summary(fer2013_faces)["duplicates"]
    train, test, across, overall = stats["within_train"], stats["within_test"], stats["across_train_test"], stats["overall"]
    assert f"{train['images']:,} images, {train['distinct']:,} distinct; {train['duplicate_groups']:,} duplicate groups holding {train['images_in_duplicate_groups']:,} images, i.e. {train['redundant_copies']:,}" in text
    assert f"{train['conflicting_label_groups']} groups carry more than one label" in text
    assert f"{test['images']:,} images, {test['distinct']:,} distinct; {test['duplicate_groups']} groups / {test['images_in_duplicate_groups']} images / {test['redundant_copies']} redundant copies; {test['conflicting_label_groups']} groups" in text
    assert f"{across['distinct_images_in_both']} distinct images occur in both" in text
    assert f"**{across['test_images_with_train_copy']} test images" in text
    assert f"({across['train_images_involved']} train images involved)" in text
    assert f"for {across['test_images_with_same_label_train_copy']} of those" in text
    assert f"{overall['images']:,} files, {overall['distinct']:,} distinct images, {overall['duplicate_groups']:,} duplicate groups" in text
    sizes = ", ".join(f"{v:,}x{k}" for k, v in overall["group_sizes"].items())
    assert f"(sizes: {sizes})" in text
    assert f"{stats['blank_images']} images are entirely black" in text


def test_data_info_cli_prints_duplicate_statistics(tmp_path):
    import subprocess
    import sys

    root = require(FER2013, "FER2013")
    out = subprocess.run([sys.executable, "-m", "ferlab.cli", "data", "info", str(root), "--montage", str(tmp_path / "m.png")],
                         capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": ""})
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert re.search(r"within train\s*│\s*28709\s*│\s*27473\s*│\s*1035\s*│\s*2271\s*│\s*1236\s*│\s*39", text), text
    assert "531 distinct images in both; 568 test images have a copy in train" in text
    assert (tmp_path / "m.png").stat().st_size > 10_000


def _write_csv(path, images, labels, usages, leading_space=False):
    from ferlab.data.faceset import FER2013_CLASSES

    sp = " " if leading_space else ""
    df = pd.DataFrame({"emotion": [FER2013_CLASSES.index(lab) for lab in labels],
                       f"{sp}Usage": usages,
                       f"{sp}pixels": [" ".join(map(str, im.ravel())) for im in images]})
    df.to_csv(path, index=False)


@pytest.mark.parametrize("variant", ["fer2013.csv", "icml_face_data.csv"])
def test_csv_and_folder_sources_agree(fer2013_faces, tmp_path, variant):
    from ferlab.data.sources import load_fer2013_csv

    rng = np.random.default_rng(0)
    sample = fer2013_faces.subset(np.sort(rng.choice(len(fer2013_faces), 600, replace=False)))
    path = tmp_path / variant
    _write_csv(path, sample.images, sample.provenance["origin_label"], sample.provenance["origin_split"],
               leading_space=variant.startswith("icml"))
    from_csv = load_fer2013_csv(path)
    assert np.array_equal(from_csv.images, sample.images)
    assert list(from_csv.provenance["origin_label"]) == list(sample.provenance["origin_label"])
    assert list(from_csv.provenance["origin_split"]) == list(sample.provenance["origin_split"])


def test_ferplus_labels_for_folder_and_csv_sources(fer2013_faces, tmp_path):
    from ferlab.data.ferplus import attach_ferplus
    from ferlab.data.sources import load_fer2013_csv

    mapping = require(FERPLUS / "fer2013_jpg_to_ferplus.csv", "FER+ mapping")
    folder = attach_ferplus(fer2013_faces, mapping)
    notes = folder.notes["ferplus"]
    print("FER+ on the folder source:", notes)
    assert notes["dropped"]["unmatched"] == 175  # the rows FER+ dropped as non-faces (SOURCE.md)
    assert notes["labelled"] + sum(notes["dropped"].values()) == len(fer2013_faces)
    assert set(folder.provenance["origin_label"]) <= {"neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"}
    agree = (folder.provenance["origin_label"] == folder.provenance["fer2013_label"]).mean()
    assert 0.55 < agree < 0.75  # SOURCE.md: 62.6% of matched files keep their FER2013 label

    # A CSV in fer2013.csv's original row order (its first 3,000 rows), rebuilt from the folder images
    # through the mapping; rows with no image (FER+ non-faces) get a blank filler.
    table = pd.read_csv(mapping, keep_default_na=False)
    row_of = dict(zip(table["path"], table["fer2013_row"]))
    n_rows = 3000
    images = np.zeros((n_rows, 48, 48), np.uint8)
    labels = ["neutral"] * n_rows
    index_of_row = {}
    for i, (src, lab) in enumerate(zip(fer2013_faces.provenance["source"], fer2013_faces.provenance["origin_label"])):
        r = row_of.get(src, "")
        if r != "" and int(r) < n_rows and int(r) not in index_of_row:
            index_of_row[int(r)] = i
            images[int(r)], labels[int(r)] = fer2013_faces.images[i], lab
    _write_csv(tmp_path / "fer2013.csv", images, labels, ["Training"] * n_rows)
    csv_faces = attach_ferplus(load_fer2013_csv(tmp_path / "fer2013.csv"), require(FERPLUS / "fer2013new.csv", "fer2013new.csv"))
    by_row = dict(zip(csv_faces.provenance["fer2013_row"], csv_faces.provenance["origin_label"]))
    folder_by_source = dict(zip(folder.provenance["source"], folder.provenance["origin_label"]))
    compared = 0
    for r, i in index_of_row.items():
        src = fer2013_faces.provenance["source"].iloc[i]
        if r in by_row and src in folder_by_source:
            assert by_row[r] == folder_by_source[src], (r, src)
            compared += 1
    assert compared > 2500


def test_ferplus8_protocol_prepares(fer2013_faces, tmp_path):
    cfg = PrepareConfig(source=str(FER2013), protocol="ferplus8", labels="ferplus",
                        ferplus=str(require(FERPLUS / "fer2013_jpg_to_ferplus.csv", "FER+ mapping")),
                        split=SplitConfig(kind="official"))
    from ferlab.data.ferplus import attach_ferplus

    data = prepare(cfg, tmp_path / "fp8", faces=attach_ferplus(fer2013_faces, cfg.ferplus))
    assert data.classes == ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
    assert data.meta["counts"]["train"]["contempt"] > 0
    assert json.loads((data.path / "data.json").read_text())["protocol"]["name"] == "ferplus8"
    assert isinstance(PreparedData(data.path).arrays("train")[0], np.ndarray)
    # The ten annotators' votes travel with every face; the distribution's top class is the majority label.
    dist = data.label_distribution("train")
    _, y = data.arrays("train")
    assert dist.shape == (len(y), 8) and np.allclose(dist.sum(axis=1), 1.0, atol=1e-6)
    assert np.array_equal(dist.argmax(axis=1), y)
    share_soft = float((dist.max(axis=1) < 1.0).mean())
    print(f"FER+ train faces with more than one class in their vote distribution: {share_soft:.1%}")
    assert 0.3 < share_soft < 0.95


def test_training_on_ferplus_vote_distributions(fer2013_faces, tmp_path):
    """``targets = "distribution"`` trains on the annotators' distribution; evaluation stays on the majority."""
    from ferlab.data.ferplus import attach_ferplus
    from ferlab.train.config import resolve_run_config
    from ferlab.train.loop import training_targets
    from ferlab.train.run import train_run

    cfg = PrepareConfig(source=str(FER2013), protocol="ferplus8", labels="ferplus",
                        ferplus=str(require(FERPLUS / "fer2013_jpg_to_ferplus.csv", "FER+ mapping")),
                        split=SplitConfig(kind="paper", train_per_class=60, test_per_class=20, seed=0))
    data = prepare(cfg, tmp_path / "fp8", faces=attach_ferplus(fer2013_faces, cfg.ferplus))
    run_cfg = resolve_run_config({"data": str(data.path), "model": {"backbone": "fercnn", "weights": "none"},
                                  "train": {"epochs": 1, "targets": "distribution", "latency_runs": 0,
                                            "tensorboard": False}})
    targets = training_targets(run_cfg.train, data)
    assert targets.ndim == 2 and np.array_equal(targets, data.label_distribution("train"))
    metrics = train_run(run_cfg, tmp_path / "run")
    assert metrics["status"] == "ok", metrics
    assert len(pd.read_csv(tmp_path / "run" / "predictions.csv")) == len(data.arrays("test")[1])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["targets"] == "distribution"
