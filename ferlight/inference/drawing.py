"""Results drawn on a frame, as the live window and the annotated video show them: each face's box,
label and track id, a bar per emotion beside the box, and the frame rate. OpenCV only.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ferlight.inference.recognizer import Face

# One colour (BGR) per class, in class order; classes beyond the palette reuse it.
PALETTE = ((54, 67, 244), (80, 175, 76), (176, 39, 156), (59, 235, 255), (243, 150, 33), (0, 152, 255), (158, 158, 158))
FONT = cv2.FONT_HERSHEY_SIMPLEX
BAR_ROW = 12  # px per emotion in the bar panel
BAR_LENGTH = 60  # px of a bar at probability 1
PANEL_WIDTH = 118


def annotate(image: np.ndarray, faces: Sequence[Face], fps: float | None = None) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box, label and track id, a bar per emotion beside
    the box, and the frame rate (when given) in the top-left corner."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    for face in faces:
        _draw_face(out, face)
    if fps is not None:
        cv2.putText(out, f"{fps:.0f} fps", (8, 20), FONT, 0.6, (0, 255, 0), 2, cv2.LINE_AA)
    return out


def _draw_face(out: np.ndarray, face: Face) -> None:
    """The face's box with its label above it, and its bar panel on the side with room for it."""
    names = list(face.probabilities)
    x, y, w, h = face.box
    colour = PALETTE[names.index(face.label) % len(PALETTE)]
    cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
    tag = face.label if face.track_id is None else f"#{face.track_id} {face.label}"
    text = f"{tag} {face.probabilities[face.label]:.2f}"
    (text_width, text_height), _ = cv2.getTextSize(text, FONT, 0.5, 1)
    top = max(y - text_height - 8, 0)
    cv2.rectangle(out, (x, top), (x + text_width + 6, top + text_height + 8), colour, cv2.FILLED)
    cv2.putText(out, text, (x + 3, top + text_height + 3), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    width = out.shape[1]
    left = x + w + 4 if x + w + 4 + PANEL_WIDTH <= width else max(x - 4 - PANEL_WIDTH, 0)
    cv2.rectangle(out, (left, y), (left + PANEL_WIDTH, y + BAR_ROW * len(names) + 2), (32, 32, 32), cv2.FILLED)
    bar_left = left + PANEL_WIDTH - BAR_LENGTH - 2
    for row, (name, p) in enumerate(face.probabilities.items()):
        top = y + 2 + row * BAR_ROW
        cv2.putText(out, name[:8], (left + 2, top + 9), FONT, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.rectangle(out, (bar_left, top + 2), (bar_left + int(p * BAR_LENGTH), top + BAR_ROW - 2), PALETTE[row % len(PALETTE)], cv2.FILLED)
