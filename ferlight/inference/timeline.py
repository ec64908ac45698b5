"""Each face's emotions over a video: every track's probabilities frame by frame, written as a CSV
and a plot per track (``track-<id>.csv``, ``track-<id>.png``).

The probabilities are those the live path shows and writes: smoothed over time (see
:mod:`ferlight.inference.face_tracks`; ``smoothing=0`` gives each frame's own). Time is the
video's, in seconds (a camera's or a stream's: since its first frame); where the source gives
none, the plot's x axis is the frame index. Plots are drawn on a matplotlib ``Figure``, not pyplot,
so that drawing one neither picks nor changes the user's backend (PNG goes through Agg), and
matplotlib loads only when the first is drawn.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from ferlight.atomic import atomic_output
from ferlight.errors import DataError

if TYPE_CHECKING:  # the recognizer hands its results here; nothing else of it is needed
    from ferlight.inference.recognizer import FrameResult


class Moment(NamedTuple):
    """A track in one frame: the frame's index and time (seconds; None if unknown), its probabilities and label."""

    frame: int
    seconds: float | None
    probabilities: list[float]
    label: str


class Timeline:
    """Collects each face track's probabilities from a video's results (:meth:`add`) and writes
    them into ``folder`` (:meth:`write`), which is made if missing (its parent must exist)."""

    def __init__(self, folder: str | os.PathLike, class_names: Sequence[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.parent.is_dir():
            raise DataError(f"cannot write timelines to {self.folder}: folder {self.folder.parent} does not exist")
        if self.folder.exists() and not self.folder.is_dir():
            raise DataError(f"cannot write timelines to {self.folder}: it is a file")
        self.class_names = tuple(class_names)
        self.tracks: dict[int, list[Moment]] = {}

    def add(self, result: FrameResult) -> None:
        """The faces of one frame, each added to its track's timeline."""
        for face in result.faces:
            probabilities = [face.probabilities[name] for name in self.class_names]
            self.tracks.setdefault(face.track_id, []).append(Moment(result.index, result.timestamp, probabilities, face.label))

    def write(self) -> list[Path]:
        """``track-<id>.csv`` (frame, seconds, each class's probability, label: a row per frame
        the track was seen in) and ``track-<id>.png`` per track, each written atomically; the
        paths written."""
        self.folder.mkdir(exist_ok=True)
        written = []
        for track_id, moments in sorted(self.tracks.items()):
            written.append(self._write_csv(self.folder / f"track-{track_id}.csv", moments))
            written.append(plot_track(track_id, moments, self.class_names, self.folder / f"track-{track_id}.png"))
        return written

    def _write_csv(self, path: Path, moments: list[Moment]) -> Path:
        with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["frame", "seconds", *self.class_names, "label"])
            for m in moments:
                seconds = "" if m.seconds is None else round(m.seconds, 4)
                writer.writerow([m.frame, seconds, *(round(p, 5) for p in m.probabilities), m.label])
        return path


def plot_track(track_id: int, moments: list[Moment], class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """One line per class, its probability over time (seconds, or frames where time is unknown),
    a dot per frame the track was seen in and no line across frames it was not; as a PNG."""
    from matplotlib.figure import Figure

    timed = all(m.seconds is not None for m in moments)
    x = np.array([m.seconds if timed else m.frame for m in moments], dtype=float)
    probabilities = np.array([m.probabilities for m in moments])
    gaps = np.flatnonzero(np.diff([m.frame for m in moments]) > 1) + 1
    x, probabilities = np.insert(x, gaps, np.nan), np.insert(probabilities, gaps, np.nan, axis=0)  # NaN breaks a line
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    for name, column in zip(class_names, probabilities.T):
        ax.plot(x, column, label=name, marker=".", markersize=4)
    ax.set(xlabel="seconds" if timed else "frame", ylabel="probability", ylim=(0, 1), title=f"Track {track_id}: emotions over time")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    return Path(path)
