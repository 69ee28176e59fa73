"""``ferlab live``: frames from a camera or a video through detect -> classify -> track -> smooth -> draw.

- :mod:`~ferlab.deploy.live.tracking`: track ids across frames, probability smoothing;
- :mod:`~ferlab.deploy.live.draw`: boxes, labels and bars on a frame;
- :mod:`~ferlab.deploy.live.sources`: cameras, video files, the window and the output files;
- :mod:`~ferlab.deploy.live.loop`: :func:`run_live`, the loop with per-stage latency.

The names below load on first use (PEP 562), so the command line can read the defaults without OpenCV.
"""

from __future__ import annotations

import importlib

_HOME = {"TrackedFace": "draw", "draw_tracks": "draw", "run_live": "loop", "check_outputs": "sources",
         "display_available": "sources", "open_source": "sources", "DEFAULT_SMOOTHING": "tracking",
         "EMASmoother": "tracking", "FaceTracker": "tracking", "iou": "tracking", "label_flips": "tracking"}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'ferlab.deploy.live' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ferlab.deploy.live.{_HOME[name]}"), name)
    globals()[name] = value
    return value
