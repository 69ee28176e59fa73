"""Images and videos in: the one place that decodes them, with the same limits for every app.

``ferlab predict`` (files), ``ferlab live`` (a video or a camera) and the web app (uploaded bytes) all
decode through :func:`decode_image` / :func:`open_video`, so an image refused by one is refused by all:

- an image is read from its header first: not an image (or a format outside ``formats``) -> 415; more
  than ``max_pixels`` pixels -> 413, before any pixel is decoded (a 20000x20000 PNG would take 1.2 GB);
  a truncated or corrupt image -> 400 (OpenCV's ``imread`` would return the decoded part silently,
  ``imdecode`` refuses it);
- a video must have a video extension and be opened by OpenCV's FFmpeg backend (OpenCV's other backends
  open a text file as an "image sequence").

This module imports OpenCV and Pillow where they are used: the command line reads its constants at start-up.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlab.errors import FerlabError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".gif"})
# Containers FFmpeg plays. The list is checked because FFmpeg also "plays" text files (its tty demuxer).
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                            ".mts", ".m2ts", ".3gp", ".ogv", ".y4m", ".mxf", ".vob", ".mjpeg"})
WEB_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")  # what a browser sends; the web app takes these only
DEFAULT_MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 50-megapixel phone JPEG is 10-20 MB


class ImageError(Exception):
    """An image ferlab refuses: ``status`` is the HTTP code the web app answers (400, 413 or 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def media_kind(path: Path) -> str | None:
    """"image" or "video" by extension, else None."""
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def probe_image(source, max_pixels: int = DEFAULT_MAX_PIXELS, formats: tuple[str, ...] | None = None) -> str:
    """Read an image's header only (bytes or a file); return its Pillow format name. Raises
    :class:`ImageError`: not an image or a format outside ``formats`` (415), more than ``max_pixels`` (413)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            fmt, (width, height) = image.format, image.size
    except Image.DecompressionBombError as exc:  # Pillow's own limit (~179 MP) refuses before we can ask
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow decodes"
        raise ImageError(413, f"image has {size}, over the limit of {min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS):,}") from None
    except (PermissionError, FileNotFoundError, IsADirectoryError):
        raise  # the file, not its content: the caller names it
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        wanted = f"send a {_words(formats)} file" if formats else "empty, corrupt or another kind of file"
        raise ImageError(415, f"not an image ({wanted})") from None
    if formats is not None and fmt not in formats:
        raise ImageError(415, f"{fmt} images are not supported: send a {_words(formats)} file")
    if width * height > max_pixels:
        raise ImageError(413, f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                              f"{max_pixels:,}")
    return fmt


def _words(formats: tuple[str, ...]) -> str:
    names = [{"WEBP": "WebP"}.get(f, f) for f in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Image bytes -> BGR uint8; raises :class:`ImageError` (see the module doc). JPEG EXIF orientation
    is applied (the width and height are the upright image's). ``formats``: Pillow format names allowed
    (None: any that Pillow recognises)."""
    import cv2

    fmt = probe_image(data, max_pixels, formats)
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:  # GIF, some TIFFs: formats OpenCV lacks. Pillow too refuses a truncated file.
        frame = _decode_with_pillow(data)
    if frame is None:
        raise ImageError(400, f"{fmt} image could not be decoded (truncated or corrupt)")
    return frame


def _refused(path: Path, exc: ImageError) -> FerlabError:
    fix = "resize it, or raise --max-pixels" if exc.status == 413 else "remove it or convert it to PNG/JPEG"
    return FerlabError(f"{path}: {exc}; {fix}")


def _decode_with_pillow(data: bytes) -> np.ndarray | None:
    import cv2
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    except (OSError, ValueError):
        return None


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A BGR uint8 image from a file; anything :func:`decode_image` refuses is one error line naming it."""
    path = Path(path)
    try:
        return decode_image(path.read_bytes(), max_pixels)
    except ImageError as exc:
        raise _refused(path, exc) from None
    except OSError as exc:
        raise FerlabError(f"{path}: cannot read it ({exc.strerror}); check the path and its permissions") from None


def check_image_header(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Fail early (before a model loads) on a file that is not an image, or is too large, by its header."""
    try:
        probe_image(path, max_pixels)
    except ImageError as exc:
        raise _refused(path, exc) from None
    except OSError as exc:
        raise FerlabError(f"{path}: cannot read it ({exc.strerror}); check the path and its permissions") from None


# ------------------------------------------------------------------------------------------------ videos
def open_video(path: str | os.PathLike, option: str = ""):
    """A ``cv2.VideoCapture`` on a video file (FFmpeg backend); an error line names ``option`` and the path."""
    import cv2

    path = Path(path)
    where = f"{option} {path}".strip()
    if not path.is_file():
        raise FerlabError(f"{where}: no such video file; give a video file" + (" or a camera index (0)" if option else ""))
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise FerlabError(f"{where}: not a video file by its extension; give one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise FerlabError(f"{where}: OpenCV cannot open this video (unknown codec or not a video); "
                          f"convert it, e.g. ffmpeg -i {path.name} out.mp4")
    return cap


def open_camera(index: int):
    """A ``cv2.VideoCapture`` on camera ``index``."""
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise FerlabError(f"--source {index}: cannot open camera {index}; check that it is connected and free, "
                          f"or give a video file")
    return cap


def video_frame_count(path: Path) -> int:
    """The container's frame count (0 when it does not say); an unopenable video is an error."""
    import cv2

    cap = open_video(path)
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


@dataclass(frozen=True)
class MediaFile:
    path: Path
    kind: str  # "image" or "video"
    frames: int  # frames to analyse (1 for an image; an estimate for a video: containers may miscount)


def collect_media(paths, every: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS,
                  on_error: Callable[[Path, FerlabError], None] | None = None) -> list[MediaFile]:
    """Files to analyse, in the order given, folders expanded recursively (sorted; hidden entries skipped).

    A missing path, a file that is neither an image nor a video by extension, an image whose header no
    decoder recognises, a folder without any, and a video OpenCV cannot open are errors (one line naming
    the path): raised, or with ``on_error``, passed to it and skipped (a folder's other files go on).
    """
    found: list[MediaFile] = []
    for raw in paths:
        path = Path(raw)
        try:
            files = _expand(path)
        except FerlabError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            continue
        for f in files:
            try:
                if media_kind(f) == "image":
                    check_image_header(f, max_pixels)
                    found.append(MediaFile(f, "image", 1))
                else:
                    found.append(MediaFile(f, "video", math.ceil(max(video_frame_count(f), 1) / every)))
            except FerlabError as exc:
                if on_error is None:
                    raise
                on_error(f, exc)
    return found


def _expand(path: Path) -> list[Path]:
    if not path.exists():
        raise FerlabError(f"{path}: no such file or folder; give images, videos or folders of them")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and media_kind(p)
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise FerlabError(f"{path}: no image or video files inside (looked for "
                              f"{', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
        return files
    if media_kind(path) is None:
        raise FerlabError(f"{path}: not an image or video file by its extension; give "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))} images or "
                          f"{', '.join(sorted(VIDEO_SUFFIXES))} videos")
    return [path]


def iter_frames(media: MediaFile, every: int = 1,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """(frame index, time in seconds or None for an image, BGR frame) for every ``every``-th frame."""
    if media.kind == "image":
        yield 0, None, read_image(media.path, max_pixels)
        return
    import cv2

    cap = open_video(media.path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        index = 0
        while True:
            if index % every:
                if not cap.grab():
                    break
            else:
                ok, frame = cap.read()
                if not ok:
                    break
                seconds = index / fps if fps > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield index, round(float(seconds), 4), frame
            index += 1
        if index == 0:
            raise FerlabError(f"{media.path}: no frame could be decoded; the video is empty or its codec is "
                              f"not supported by OpenCV (convert it, e.g. to mp4)")
    finally:
        cap.release()
