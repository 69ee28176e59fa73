"""Tracking and smoothing, as ``ferlab live`` uses them: they live in :mod:`ferlab.deploy.tracking`, shared
with ``ferlab predict``; this name stays for existing imports."""

from ferlab.deploy.tracking import DEFAULT_SMOOTHING, EMASmoother, FaceTracker, Track, centre_distance, iou, label_flips

__all__ = ["DEFAULT_SMOOTHING", "EMASmoother", "FaceTracker", "Track", "centre_distance", "iou", "label_flips"]
