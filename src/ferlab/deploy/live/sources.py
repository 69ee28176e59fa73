"""Where live frames come from (a camera or a video file), where they go (a window, an annotated video, JSON
lines), and the checks on both before any work starts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ferlab.deploy.media import open_camera, open_video
from ferlab.deploy.timeline import check_timeline_paths, timeline_paths
from ferlab.errors import FerlabError

if TYPE_CHECKING:  # OpenCV is imported where it is used: the command line reads VIDEO_CODECS at start-up
    import cv2

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
WINDOW = "ferlab live (q to quit)"


def display_available() -> tuple[bool, str]:
    """Whether a window can be shown: OpenCV built with a GUI, and (on Linux) a display to show it on."""
    import cv2

    gui = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        return False, "this OpenCV has no GUI (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    return True, ""


def open_source(source: str | int | os.PathLike) -> tuple[cv2.VideoCapture, bool]:
    """A capture for a camera index ("0", 1, ...) or a video file; returns it and whether it is a camera."""
    text = str(source)
    if text.isdigit():
        return open_camera(int(text)), True
    return open_video(text, "--source"), False


def timeline_files(source: str | int | os.PathLike, out: Path | None, jsonl: Path | None) -> tuple[Path, Path] | None:
    """The timeline plot and summary of a run with outputs, beside them (--jsonl's, else --out's stem)."""
    results = jsonl if jsonl is not None else out
    if results is None:
        return None
    pngs, csv = timeline_paths(results, [Path(str(source))])
    return pngs[Path(str(source))], csv


def check_outputs(out: Path | None, jsonl: Path | None, overwrite: bool, source: str | int | os.PathLike = "0") -> None:
    """Fail before any work on an unknown extension or an existing output (the timeline's included) without
    --overwrite."""
    if out is not None and out.suffix.lower() not in VIDEO_CODECS:
        raise FerlabError(f"--out {out}: unknown video extension {out.suffix!r}; use {', '.join(VIDEO_CODECS)}")
    if jsonl is not None and jsonl.suffix.lower() != ".jsonl":
        raise FerlabError(f"--jsonl {jsonl}: expected a .jsonl file")
    for option, path in (("--out", out), ("--jsonl", jsonl)):
        if path is not None and path.exists() and not overwrite:
            raise FerlabError(f"{option} {path}: already exists; choose another path or pass --overwrite")
    if out is not None and jsonl is not None and out.resolve() == jsonl.resolve():
        raise FerlabError("--out and --jsonl: give two different files")
    files = timeline_files(source, out, jsonl)
    if files is not None:
        check_timeline_paths(files, overwrite, "--jsonl" if jsonl is not None else "--out")


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


class Outputs:
    """The annotated video and the JSON lines of one live run, written to temporary siblings and renamed
    into place by :meth:`commit`, so a failed or empty run leaves no partial file (:meth:`abort`)."""

    def __init__(self, out: Path | None, jsonl: Path | None, fps: float):
        self.out, self.jsonl, self.fps = out, jsonl, fps
        self._writer: cv2.VideoWriter | None = None
        self._lines = None
        if jsonl is not None:
            jsonl.parent.mkdir(parents=True, exist_ok=True)
            self._lines = open(_temp_sibling(jsonl), "w", encoding="utf-8")  # noqa: SIM115  (closed by commit/abort)

    @property
    def video(self) -> bool:
        return self.out is not None

    def write(self, record: dict, frame: np.ndarray) -> None:
        import cv2

        if self._lines is not None:
            self._lines.write(json.dumps(record) + "\n")
        if self.out is not None:
            if self._writer is None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.out.suffix.lower()])
                self._writer = cv2.VideoWriter(str(_temp_sibling(self.out)), fourcc, self.fps,
                                               (frame.shape[1], frame.shape[0]))
                if not self._writer.isOpened():
                    raise FerlabError(f"--out {self.out}: OpenCV cannot write this video format here; try .avi or .mp4")
            self._writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))

    def commit(self) -> dict[str, str]:
        """Finish both files and move them into place; returns {"jsonl": path, "out": path} of those written."""
        written = {}
        if self._lines is not None:
            self._lines.flush()
            os.fsync(self._lines.fileno())
            self._lines.close()
            self._lines = None
            os.replace(_temp_sibling(self.jsonl), self.jsonl)
            written["jsonl"] = str(self.jsonl)
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(_temp_sibling(self.out), self.out)
            written["out"] = str(self.out)
        return written

    def abort(self) -> None:
        if self._lines is not None:
            self._lines.close()
            self._lines = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        for path in (self.out, self.jsonl):
            if path is not None:
                _temp_sibling(path).unlink(missing_ok=True)


class Window:
    """An OpenCV window when one can be shown; q or Esc asks to stop. Falls back to headless, with a note."""

    def __init__(self, wanted: bool | None, note):
        can_show, why = display_available()
        self.shown = can_show if wanted is None else (wanted and can_show)
        self.note = note
        if wanted and not can_show:
            note(f"no window: {why}; running headless")

    def show(self, frame: np.ndarray) -> bool:
        """Show ``frame``; True when the user asked to stop."""
        import cv2

        if not self.shown:
            return False
        try:
            cv2.imshow(WINDOW, frame)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            self.shown = False
            self.note(f"no window ({str(exc).strip().splitlines()[-1]}); running headless")
            return False
        return key in (ord("q"), 27)

    def close(self) -> None:
        import cv2

        if self.shown:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
