"""``ferlab live``: frames from a camera or a video through detect -> classify -> track -> smooth -> draw.

- :mod:`~ferlab.deploy.live.tracking`: track ids across frames, probability smoothing;
- :mod:`~ferlab.deploy.live.draw`: boxes, labels and bars on a frame;
- :mod:`~ferlab.deploy.live.sources`: cameras, video files, the window and the output files;
- :mod:`~ferlab.deploy.live.loop`: :func:`run_live`, the loop with per-stage latency.
"""

from ferlab.deploy.live.draw import TrackedFace, draw_tracks
from ferlab.deploy.live.loop import run_live
from ferlab.deploy.live.sources import check_outputs, display_available, open_source
from ferlab.deploy.live.tracking import DEFAULT_SMOOTHING, EMASmoother, FaceTracker, iou, label_flips

__all__ = ["DEFAULT_SMOOTHING", "EMASmoother", "FaceTracker", "TrackedFace", "check_outputs", "display_available",
           "draw_tracks", "iou", "label_flips", "open_source", "run_live"]
