"""Each backbone family's input normalisation, as numbers (no TensorFlow): read by the backbone registry
and the data checks without importing Keras, applied in the graph by :class:`~ferlab.models.layers.FacePreprocess`."""

from __future__ import annotations

from dataclasses import dataclass

# ImageNet statistics used by Keras's preprocess_input modes.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Norm:
    """A per-channel affine normalisation ``y = x * scale + offset`` on [0, 255] RGB pixels.

    Every family's normalisation is affine, so one implementation (mul + add, after an optional RGB->BGR
    flip) covers them all and exports as two elementwise ops.
    """

    description: str
    scale: tuple[float, float, float]
    offset: tuple[float, float, float]  # in output channel order (BGR when ``bgr``)
    bgr: bool = False


NORMS: dict[str, Norm] = {
    "tf": Norm("x/127.5 - 1, range [-1, 1] (Keras 'tf' mode)", (1 / 127.5,) * 3, (-1.0,) * 3),
    "caffe": Norm("RGB->BGR, minus the ImageNet BGR mean [103.939, 116.779, 123.68] (Keras 'caffe' mode)",
                  (1.0,) * 3, tuple(-m for m in _CAFFE_MEAN_BGR), bgr=True),
    "torch": Norm("x/255, minus the ImageNet mean [0.485, 0.456, 0.406], over the std [0.229, 0.224, 0.225] "
                  "(Keras 'torch' mode)", tuple(1 / (255 * s) for s in _TORCH_STD),
                  tuple(-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD))),
    "raw": Norm("pass-through, range [0, 255] (the backbone rescales internally)", (1.0,) * 3, (0.0,) * 3),
    "unit": Norm("x/255, range [0, 1] (the study's uniform scaling)", (1 / 255,) * 3, (0.0,) * 3),
}
