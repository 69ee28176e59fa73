"""The web app (``ferlab serve``): routes in :mod:`~ferlab.deploy.web.app`, the image-to-faces engine in
:mod:`~ferlab.deploy.web.engine`, the camera WebSocket in :mod:`~ferlab.deploy.web.protocol`, upload limits
in :mod:`~ferlab.deploy.web.uploads`, sockets and uvicorn in :mod:`~ferlab.deploy.web.server`, the page in
``static/``. Importing it imports FastAPI."""

from ferlab.deploy.web.app import create_app
from ferlab.deploy.web.engine import BatchingClassifier, Engine
from ferlab.deploy.web.server import serve_in_thread, ws_max_size

__all__ = ["BatchingClassifier", "Engine", "create_app", "serve_in_thread", "ws_max_size"]
