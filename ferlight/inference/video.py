"""Where live inference reads frames and where it writes its results.

Sources (:func:`open_source`): a camera index, a video file, stream URL or image sequence
(anything ``cv2.VideoCapture`` opens), an image file, a folder of images, or a list of images and
folders. Each yields :class:`Frame` objects; a source that cannot be opened raises
:class:`~ferlight.errors.DataError` at once, before any frame is read. A stream that ends or drops
mid-way simply ends. An image given alone that cannot be read is a DataError; in a folder or a
list, it can be skipped instead (``on_unreadable``), so that one bad file does not end a batch.

Sinks: :class:`VideoSink` (the annotated video), :class:`JsonlSink` (one JSON object per frame)
and :class:`CsvSink` (one row per face of each image). All write under a temporary name and rename
it when closed, so an output file is never half-written. Closing the video and JSONL after an
error still keeps every frame processed so far (no frame, no file); the CSV is kept only when
the run ends without an error.

Frames and files only: what is drawn on a frame is :mod:`ferlight.inference.drawing`'s.
"""

from __future__ import annotations

import csv
import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from ferlight.atomic import atomic_output
from ferlight.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
IMAGE_FPS = 1.0  # rate at which a sequence of images is written as a video: one per second
DEFAULT_FPS = 25.0  # for a source that does not report its rate
UNREADABLE = "not a readable image"
FACE_COLUMNS = ("image", "x", "y", "width", "height", "label")  # then one column per class


@dataclass
class Frame:
    """One frame of a source.

    ``timestamp``: seconds from the start of a video file, or since the first frame of a camera
    or stream; None for images, which carry their file ``name`` instead.
    """

    index: int
    timestamp: float | None
    image: np.ndarray
    name: str | None = None


class CaptureSource:
    """A camera, video file or stream read with ``cv2.VideoCapture``; its first frame is read on open."""

    def __init__(self, target: int | str, description: str, live: bool) -> None:
        self.live = live
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            raise DataError(f"cannot open {description}")
        ok, self._first = self.capture.read()
        self._started = time.monotonic()
        if not ok:
            self.capture.release()
            raise DataError(f"no frame could be read from {description}")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else None

    def __iter__(self) -> Iterator[Frame]:
        image, index = self._first, 0
        try:
            while True:
                if self.live:
                    timestamp = time.monotonic() - self._started
                else:
                    timestamp = index / self.fps if self.fps else None
                yield Frame(index, timestamp, image)
                ok, image = self.capture.read()
                if not ok:
                    return
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        self.capture.release()


class ImageSource:
    """Image files, read in the given order.

    ``on_unreadable``: called with the path of each file that cannot be decoded, which is then
    skipped; None: such a file is a DataError. When not one file can be read, the iteration ends
    with a DataError. ``full_names``: a frame's ``name`` is its path as given, not its file name
    (the images of several folders may share names).
    """

    fps = IMAGE_FPS

    def __init__(
        self, paths: Sequence[Path], on_unreadable: Callable[[Path], None] | None = None, full_names: bool = False
    ) -> None:
        self.paths = list(paths)
        self.on_unreadable = on_unreadable
        self.full_names = full_names

    def __iter__(self) -> Iterator[Frame]:
        read = 0
        for index, path in enumerate(self.paths):
            # haveImageReader first: imread would print OpenCV's own complaint about an unknown format.
            image = cv2.imread(str(path), cv2.IMREAD_COLOR) if cv2.haveImageReader(str(path)) else None
            if image is None:
                if self.on_unreadable is None:
                    raise DataError(f"cannot read image {path}: {UNREADABLE}")
                self.on_unreadable(path)
                continue
            read += 1
            yield Frame(index, None, image, str(path) if self.full_names else path.name)
        if self.paths and not read:
            raise DataError(f"none of the {len(self.paths)} images could be read")

    def close(self) -> None:
        """Nothing to release (here for symmetry with :class:`CaptureSource`)."""


def open_source(
    source: int | str | os.PathLike | Sequence[str | os.PathLike], on_unreadable: Callable[[Path], None] | None = None
) -> CaptureSource | ImageSource:
    """Open a camera index (``0`` or ``"0"``), a URL, a video file, an image sequence given as a
    printf pattern (``frames/%04d.png``, read as a video), an image file, a folder of images, or a
    list of several images and folders.

    A folder yields its image files (by suffix, see IMAGE_SUFFIXES) sorted by name, and ignores
    other files; a list yields its items in the order given, each folder's images sorted by name,
    and names each frame by its path. ``on_unreadable`` (see :class:`ImageSource`) applies to the
    images of a folder or a list, never to an image given alone. DataError names the source that
    cannot be opened.
    """
    if isinstance(source, (list, tuple)):
        if len(source) != 1:
            return ImageSource(_listed_images(source), on_unreadable, full_names=True)
        source = source[0]
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return CaptureSource(int(source), f"camera {int(source)}", live=True)
    text = os.fspath(source)
    if "://" in text:
        return CaptureSource(text, f"stream {text}", live=True)
    path = Path(text)
    if path.is_dir():
        images = _folder_images(path)
        if not images:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
        return ImageSource(images, on_unreadable)
    if not path.is_file():
        if "%" in text:
            return CaptureSource(text, f"image sequence {text}", live=False)
        raise DataError(f"no such file, folder or camera: {text}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource([path])
    return CaptureSource(str(path), f"video {path} (unreadable or not a video)", live=False)


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _listed_images(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """The images of several sources: each file as it is (read as an image, whatever its suffix),
    each folder's images; DataError for a source that is neither, or when there is no image at all."""
    paths = []
    for source in map(Path, sources):
        if source.is_dir():
            paths += _folder_images(source)
        elif source.is_file():
            paths.append(source)
        else:
            raise DataError(f"no such file or folder: {source} (several sources must all be images or folders)")
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, sources)) or 'an empty list'}")
    return paths


def _partial_name(path: Path) -> Path:
    """Where an output is written until it is complete (same suffix: it picks the video container)."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _check_output_folder(path: Path) -> None:
    if not path.parent.is_dir():
        raise DataError(f"cannot write {path}: folder {path.parent} does not exist")


class VideoSink:
    """Frames to a video file (mp4v for .mp4/.m4v/.mov/.mkv, MJPG for .avi).

    The writer opens at the first frame, at that frame's size; later frames of another size (a
    folder of mixed images) are resized to it, so the video holds exactly one frame per write.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise ConfigError(f"cannot write video {self.path}: use one of {', '.join(VIDEO_CODECS)}")
        _check_output_folder(self.path)
        self.fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix])
        self.fps = fps or DEFAULT_FPS
        self.partial = _partial_name(self.path)
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        size = (image.shape[1], image.shape[0])
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.partial), self.fourcc, self.fps, size)
            if not self.writer.isOpened():
                raise DataError(f"cannot write video {self.path}")
            self.size = size
        if size != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file and give it its final name (no file when no frame was written)."""
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        os.replace(self.partial, self.path)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JsonlSink:
    """One JSON object per line; each line is flushed as written. No line, no file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        _check_output_folder(self.path)
        self.partial = _partial_name(self.path)
        try:
            self.file = open(self.partial, "w", encoding="utf-8")
        except OSError as err:
            raise DataError(f"cannot write {self.path}: {err.strerror}") from None
        self.lines = 0

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        self.lines += 1

    def close(self) -> None:
        """Close the file and give it its final name (delete it when no line was written)."""
        if self.file.closed:
            return
        self.file.close()
        if self.lines:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CsvSink:
    """One row per face of each image: the image's name, the face box, the label, then the
    probability of each of ``class_names``. A context manager: the file gets its name when the
    ``with`` block ends without an error, and is deleted when it ends with one."""

    def __init__(self, path: str | os.PathLike, class_names: Sequence[str]) -> None:
        self.path = Path(path)
        _check_output_folder(self.path)
        self.class_names = tuple(class_names)
        self._files = ExitStack()
        try:
            self.file = open(self._files.enter_context(atomic_output(self.path)), "w", newline="", encoding="utf-8")
        except OSError as err:
            raise DataError(f"cannot write {self.path}: {err.strerror}") from None
        self._files.enter_context(self.file)
        self._writer = csv.writer(self.file)
        self._writer.writerow([*FACE_COLUMNS, *self.class_names])
        self.rows = 0

    def write(self, record: dict) -> None:
        """The faces of one image's JSON record (:meth:`FrameResult.to_json`)."""
        for face in record["faces"]:
            probabilities = [face["probabilities"][name] for name in self.class_names]
            self._writer.writerow([record["image"], *face["box"], face["label"], *probabilities])
            self.rows += 1

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc) -> None:
        self._files.__exit__(*exc)
