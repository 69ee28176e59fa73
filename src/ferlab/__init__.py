"""ferlab: facial expression recognition research and deployment.

The package imports nothing heavy at import time; TensorFlow/Keras load only when a model is built.
``from ferlab import FaceAnalyzer`` loads the detector and runtime path (OpenCV, LiteRT), not TensorFlow.
"""

__version__ = "0.1.0"

from ferlab.errors import FerlabError


def __getattr__(name: str):
    if name in ("FaceAnalyzer", "Timeline"):  # lazily: `import ferlab` stays light
        from ferlab import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module 'ferlab' has no attribute {name!r}")


__all__ = ["FaceAnalyzer", "FerlabError", "Timeline", "__version__"]
