"""The backbone registry (:data:`BACKBONES`): the study's eight keras.applications networks and ferlab's
compact FER CNN.

Adding a backbone is one :func:`register_backbone` call: a constructor ``(input_size, weights,
include_top, name) -> keras.Model`` returning the bare network (no pooling, no classifier) on an
``input_size`` x ``input_size`` image, and its family. A family fixes what every member shares: the native
input normalisation, the input channels, and how layer names group into blocks for ``mode="partial"``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ferlab.errors import FerlabError
from ferlab.face import FACE_SIZE
from ferlab.models.norms import NORMS
from ferlab.registry import Registry

if TYPE_CHECKING:
    import keras

# Keras is imported inside the constructors, not here: the registry (names, families, input sizes) is read
# by config validation on every command, and a bad spec must answer in a second, not after TensorFlow's
# start-up (a bad study spec: 1.7 s against 11.7 s with TensorFlow imported, on one loaded 2-core machine).


@dataclass(frozen=True)
class Family:
    """What the members of an architecture family share.

    ``block_pattern`` captures a layer's block from its name; a layer that does not match belongs to the
    block of the layer before it (leading unmatched layers form the block "stem").
    ``internal_rescale`` is an affine (scale, offset) the backbone itself applies before its first
    convolution (MobileNetV3 ships a Rescaling layer), so documented input ranges include it.
    """

    norm: str
    block_pattern: str
    channels: int = 3
    internal_rescale: tuple[float, float] | None = None


FAMILIES: dict[str, Family] = {
    "mobilenetv2": Family("tf", r"^(Conv1|expanded_conv|block_\d+|Conv_1)"),
    "mobilenetv3": Family("raw", r"^(expanded_conv(?:_\d+)?|conv(?:_\d+)?)(?:_|$)", internal_rescale=(1 / 127.5, -1.0)),
    "nasnet": Family("tf", r"_(stem_\d+|reduce_\d+|\d+)$"),  # cell id suffix: stem_1, 0..12, reduce_4
    "resnet": Family("caffe", r"^(conv1|conv\d+_block\d+)"),
    "resnetv2": Family("tf", r"^(conv1|conv\d+_block\d+)"),
    "densenet": Family("torch", r"^(conv1|conv\d+_block\d+|pool\d+)"),  # pool<i>: transition layers
    "fercnn": Family("tf", r"^(block\d+)", channels=1),
}

Constructor = Callable[..., "keras.Model"]


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry.

    ``imagenet_file(input_size)`` names the no-top weights file Keras caches under ~/.keras/models/ (None:
    no ImageNet weights), which is what an offline user must put there.
    """

    name: str
    build: Constructor
    family: str
    default_input_size: int = 224
    min_input_size: int = 32
    imagenet_file: Callable[[int], str] | None = None

    @property
    def family_spec(self) -> Family:
        return FAMILIES[self.family]


BACKBONES: Registry[BackboneSpec] = Registry("backbone", "backbone")


def register_backbone(name: str, build: Constructor, family: str, **fields) -> BackboneSpec:
    """Add a backbone under ``name`` (lowercase; a name registered twice is an error); see
    :class:`BackboneSpec` for ``fields``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; add it to FAMILIES first")
    spec = BackboneSpec(name.lower(), build, family, **fields)
    return BACKBONES.register(spec.name, spec)


def list_backbones() -> list[str]:
    """Registered backbone names, the study's eight first, in registration order."""
    return list(BACKBONES.names())


def get_backbone(name: str) -> BackboneSpec:
    return BACKBONES.get(name)


def block_of_layers(spec: BackboneSpec, backbone: keras.Model) -> dict[str, str]:
    """Layer name -> block name for every layer of a built backbone, in layer order."""
    pattern = re.compile(spec.family_spec.block_pattern)
    blocks, current = {}, "stem"
    for layer in backbone.layers:
        match = pattern.search(layer.name)
        current = match.group(1) if match else current
        blocks[layer.name] = current
    return blocks


def preprocess_info(backbone: str, preprocessing: str = "native") -> dict:
    """What the tensor entering the backbone's first convolution looks like for raw [0, 255] pixels.

    ``black``/``white``: its per-channel values (in the order the convolution sees them) for a constant 0
    and a constant 255 image, including any rescaling inside the backbone; ``range`` the overall span.
    ``preprocessing="paper"`` is the study's uniform x/255 for every backbone.
    """
    spec = get_backbone(backbone)
    fam = spec.family_spec
    if preprocessing not in ("native", "paper"):
        raise FerlabError(f"preprocessing: unknown value {preprocessing!r}; choose native or paper")
    norm_name = fam.norm if preprocessing == "native" else "unit"
    norm = NORMS[norm_name]
    scale, offset = fam.internal_rescale or (1.0, 0.0)
    black = [round(o * scale + offset, 6) for o in norm.offset[:fam.channels]]
    white = [round((255 * s + o) * scale + offset, 6) for s, o in zip(norm.scale[:fam.channels], norm.offset)]
    inside = f"; then x/{1 / scale:g} {offset:+g} inside the backbone" if fam.internal_rescale else ""
    return {"backbone": spec.name, "preprocessing": preprocessing, "norm": norm_name,
            "description": norm.description + inside, "channels": fam.channels, "black": black, "white": white,
            "range": (min(black + white), max(black + white))}


def _keras_app(constructor: str, **fixed) -> Constructor:
    """A registry constructor for ``keras.applications.<constructor>``: never with Keras's own pooling."""

    def build(input_size: int, weights: str | None, include_top: bool = False, name: str = "backbone") -> keras.Model:
        keras = _keras()
        return getattr(keras.applications, constructor)(include_top=include_top, weights=weights, pooling=None,
                                                        input_shape=(input_size, input_size, 3), name=name, **fixed)

    return build


def _keras():
    import ferlab.backend  # noqa: F401  (TensorFlow imported quietly, before keras)
    import keras

    return keras


def _fixed(filename: str) -> Callable[[int], str]:
    return lambda input_size: filename


def _mobilenetv2_file(input_size: int) -> str:
    # Keras ships MobileNetV2 weights trained at five sizes and falls back to 224.
    rows = input_size if input_size in (96, 128, 160, 192, 224) else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"


FERCNN_WIDTHS = (16, 32, 64, 128)
FERCNN_WIDE_WIDTHS = tuple(w * 3 // 2 for w in FERCNN_WIDTHS)  # 1.5x


def fercnn(input_size: int, weights: str | None = None, include_top: bool = False,
           name: str = "backbone", widths: tuple[int, ...] = FERCNN_WIDTHS) -> keras.Model:
    """ferlab's compact FER CNN: 4 blocks of (conv3x3-BN-ReLU) x 2 + 2x2 max-pool, widths 16/32/64/128.

    About 0.3 M parameters and 59 MFLOPs per 48 px face (a 32/64/128 three-block net has as many
    parameters but 3x the FLOPs, the first blocks running at full resolution), so it trains from scratch
    on a CPU in seconds per epoch; the final map is 3x3 at 48 px. Like the ImageNet backbones it ends in
    ReLU. It takes the grey channel directly (no RGB repeat); BatchNorm momentum is 0.9 so the moving
    statistics keep up within a few short epochs.

    ``fercnn-wide`` is the same net at 1.5x the widths (24/48/96/192): 0.66 M parameters, 2.25x the
    FLOPs; one training epoch on FER2013's 24k training faces took 2.0 min here against 1.6 min for
    fercnn (2 cores, batch 64), the capacity the model zoo's fast model uses.
    """
    if include_top or weights is not None:
        raise FerlabError("fercnn has no pretrained weights or ImageNet classifier; use weights='none' or a path")
    keras = _keras()
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = inputs
    for b, width in enumerate(widths, start=1):
        for i in (1, 2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{b}_conv{i}")(x)
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{b}_bn{i}")(x)
            x = keras.layers.ReLU(name=f"block{b}_relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    return keras.Model(inputs, x, name=name)


# The study's eight backbones, then ferlab's own.
register_backbone("mobilenetv2", _keras_app("MobileNetV2"), "mobilenetv2", imagenet_file=_mobilenetv2_file)
register_backbone("mobilenetv3small", _keras_app("MobileNetV3Small", include_preprocessing=True), "mobilenetv3",
                  imagenet_file=_fixed("weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"))
register_backbone("nasnetmobile", _keras_app("NASNetMobile"), "nasnet", imagenet_file=_fixed("nasnet_mobile_no_top.h5"))
register_backbone("resnet50", _keras_app("ResNet50"), "resnet",
                  imagenet_file=_fixed("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"))
register_backbone("resnet50v2", _keras_app("ResNet50V2"), "resnetv2",
                  imagenet_file=_fixed("resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"))
register_backbone("resnet152v2", _keras_app("ResNet152V2"), "resnetv2",
                  imagenet_file=_fixed("resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5"))
register_backbone("densenet169", _keras_app("DenseNet169"), "densenet",
                  imagenet_file=_fixed("densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5"))
register_backbone("densenet201", _keras_app("DenseNet201"), "densenet",
                  imagenet_file=_fixed("densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5"))
register_backbone("fercnn", fercnn, "fercnn", default_input_size=FACE_SIZE, min_input_size=8)
register_backbone("fercnn-wide", functools.partial(fercnn, widths=FERCNN_WIDE_WIDTHS), "fercnn",
                  default_input_size=FACE_SIZE, min_input_size=8)
