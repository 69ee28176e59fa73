"""The frozen fast path: one backbone pass per image, then every pooling head trains from a cache.

With the backbone frozen (and BatchNorm in inference mode), its final feature map for an image never
changes, so a four-pooling study of one backbone needs one backbone pass, not four trainings. The cache
holds the feature maps as float16 ``.npy`` files plus the extractor itself, keyed by the data fingerprint,
backbone, weights, input size and preprocessing (and the seed for random weights; the pooling kind when
the scope replaces internal pooling layers).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ferlab.data.prepare import PreparedData
from ferlab.io import atomic_dir, file_lock
from ferlab.train.config import RunConfig
from ferlab.train.loop import fit_resumable, one_hot_targets, training_targets


def default_cache_dir() -> Path:
    return Path(os.environ.get("FERLAB_CACHE", Path.home() / ".cache" / "ferlab")) / "features"


def cache_key(cfg: RunConfig, data: PreparedData) -> str:
    m = cfg.model
    weights = m.weights
    if weights not in ("imagenet", "none"):
        weights = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    parts = {"fingerprint": data.fingerprint, "backbone": m.backbone, "weights": weights, "input_size": m.input_size,
             "preprocessing": m.preprocessing, "scope": m.pooling_scope,
             "pooling": m.pooling if m.pooling_scope == "all" else None,
             "seed": cfg.train.seed if m.weights == "none" else None, "version": 1}
    return f"{m.backbone}-{m.input_size}px-" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cached_features(cfg: RunConfig, data: PreparedData, cache_dir: str | os.PathLike | None = None) -> tuple[Path, int]:
    """Directory with ``{train,val,test}.npy`` float16 feature maps and ``extractor.keras``, computed once;
    and how many images went through the backbone for it now (0 when the cache already held them)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = root / cache_key(cfg, data)
    if (path / "test.npy").is_file():
        return path, 0
    # Trials of one backbone on several workers (a Ray study) share the cache: one computes, the others wait.
    with file_lock(root / f".{path.name}.lock"):
        if (path / "test.npy").is_file():
            return path, 0
        return path, _compute_features(cfg, data, path)


def _compute_features(cfg: RunConfig, data: PreparedData, path: Path) -> int:
    import keras

    from ferlab.models import build_feature_extractor
    from ferlab.train.data import eval_dataset

    keras.utils.set_random_seed(cfg.train.seed)  # random-init backbones must match their cache key
    extractor = build_feature_extractor(cfg.model.model_copy(update={"num_classes": len(data.classes)}))
    computed = 0
    with atomic_dir(path, overwrite=True) as tmp:
        for split in ("train", "val", "test"):
            x, _ = data.arrays(split)
            out = np.lib.format.open_memmap(tmp / f"{split}.npy", mode="w+", dtype=np.float16,
                                            shape=(len(x), *extractor.output.shape[1:]))
            start = 0
            for batch in eval_dataset(x, batch_size=128):
                feats = extractor.predict_on_batch(batch)
                out[start:start + len(feats)] = feats
                start += len(feats)
            computed += len(x)
            out.flush()
            del out
        extractor.save(tmp / "extractor.keras")
    return computed


def train_frozen(cfg: RunConfig, data: PreparedData, run_dir: Path, cache_dir, on_history, teacher_probs=None):
    """Train the pooling head on cached features; return (full model, state, probabilities, zero fraction,
    the cache's record for metrics.json: its key and the images computed for this run)."""
    import keras

    from ferlab.models import build_head, load_model
    from ferlab.train.data import train_dataset

    path, computed = cached_features(cfg, data, cache_dir)
    feats = {s: np.load(path / f"{s}.npy", mmap_mode="r") for s in ("train", "val", "test")}
    labels = {s: data.arrays(s)[1] for s in ("train", "val", "test")}
    targets = training_targets(cfg.train, data, teacher_probs)
    n_classes = len(data.classes)
    one_hot = one_hot_targets(cfg.train)
    model_cfg = cfg.model.model_copy(update={"num_classes": n_classes})

    def train_ds_for(first_epoch: int):
        return train_dataset(np.asarray(feats["train"]), targets, batch_size=cfg.train.batch_size,
                             seed=cfg.train.seed, first_epoch=first_epoch, epochs=cfg.train.epochs,
                             num_classes=n_classes, one_hot=one_hot)

    val_y = keras.ops.one_hot(labels["val"], n_classes) if one_hot else labels["val"]
    head, state = fit_resumable(lambda: build_head(model_cfg, feats["train"].shape[1:]), train_ds_for,
                                (np.asarray(feats["val"], np.float32), val_y), cfg.train, len(labels["train"]),
                                run_dir, None, on_history)
    probs = {s: np.asarray(head.predict(np.asarray(f, np.float32), batch_size=512, verbose=0), np.float64)
             for s, f in feats.items()}
    extractor = load_model(path / "extractor.keras", "cached feature extractor",
                           f"delete the cache entry {path} and rerun (it is computed again)")
    inputs = keras.Input(extractor.input.shape[1:], name="face")
    model = keras.Model(inputs, head(extractor(inputs, training=False)), name=f"{cfg.model.backbone}_{cfg.model.pooling}")
    pooled = _pooled_features(head, np.asarray(feats["test"][:256], np.float32))
    zero_fraction = None if pooled is None else float(np.mean(pooled == 0))
    return model, state, probs, zero_fraction, {"key": path.name, "images_computed": computed}


def _pooled_features(head, feats: np.ndarray) -> np.ndarray | None:
    """The head's pooled features (output of its pooling layer) for cached feature maps."""
    import keras

    pool = next((layer for layer in head.layers if layer.name == "pool"), None)
    if pool is None:
        return None
    return np.asarray(keras.Model(head.inputs, pool.output).predict(feats, verbose=0))
