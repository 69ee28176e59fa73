"""ferlab: facial expression recognition research and deployment.

The package imports nothing heavy at import time; TensorFlow/Keras load only when a model is built.
"""

__version__ = "0.1.0"

from ferlab.errors import FerlabError

__all__ = ["FerlabError", "__version__"]
