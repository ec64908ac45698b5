"""A synthetic video of real faces moving on a plain background, with the true box of every face.

The faces are photographs that ship inside PyPI packages (scikit-image's astronaut and
matplotlib's Grace Hopper, see :mod:`ferlight.testing.live_clips`), so no data has to be
downloaded. :func:`compose_frames` gives a short clip whose faces are easy to find, for tests of
where faces are and how results flow; the live benchmark's harder clips are
:mod:`ferlight.testing.live_clips`'s.
"""

from __future__ import annotations

import cv2
import numpy as np

from ferlight.testing.live_clips import PHOTO_FACES, photo

FACE_SIZE = 90  # side of a face in the composed frames, pixels
SWING = 20  # frames a face moves one way before turning back
_MARGIN = 0.4  # context kept around a face, as a fraction of its side (the cascade needs some)


def _patch(image_bgr: np.ndarray, face: tuple[int, int, int, int]) -> np.ndarray:
    """The face with a margin around it, scaled so that the face is FACE_SIZE pixels wide."""
    x, y, w, h = face
    m = int(_MARGIN * w)
    crop = image_bgr[max(y - m, 0) : y + h + m, max(x - m, 0) : x + w + m]
    scale = FACE_SIZE / w
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def face_patches() -> list[np.ndarray]:
    """Four BGR patches, each a face centred with a margin: two photos and their mirror images."""
    patches = [_patch(photo(name), PHOTO_FACES[name]) for name in ("astronaut", "hopper")]
    return patches + [p[:, ::-1].copy() for p in patches]


def smooth_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, faceless BGR background: a colour gradient with soft blobs."""
    rng = np.random.default_rng(seed)
    noise = rng.random((height // 40 + 2, width // 40 + 2, 3)).astype(np.float32)
    blobs = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(0.2, 0.8, width, dtype=np.float32)[None, :, None]
    return np.clip((0.5 * blobs + 0.5 * ramp) * 255, 0, 255).astype(np.uint8)


def compose_frames(
    n_frames: int = 24,
    n_faces: int = 2,
    size: tuple[int, int] = (640, 480),
    empty: tuple[int, ...] = (0, 1, 20, 21, 22, 23),
    step: int = 3,
) -> tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]:
    """Frames (BGR) of ``n_faces`` faces moving ``step`` px per frame, and each frame's face boxes.

    Faces start on a 2 x 2 grid and move right and down, then back, every SWING frames; frames
    whose index is in ``empty`` show the background alone (their box list is empty).
    """
    width, height = size
    patches = face_patches()[:n_faces]
    base = smooth_background(width, height)
    cells = [(0.08, 0.08), (0.55, 0.08), (0.08, 0.5), (0.55, 0.5)]
    frames, boxes = [], []
    for i in range(n_frames):
        frame = base.copy()
        frame_boxes = []
        if i not in empty:
            for patch, (cx, cy) in zip(patches, cells):
                ph, pw = patch.shape[:2]
                shift = step * min(i % (2 * SWING), 2 * SWING - i % (2 * SWING))
                left, top = int(cx * width) + shift, int(cy * height) + shift // 2
                frame[top : top + ph, left : left + pw] = patch
                offset_x, offset_y = (pw - FACE_SIZE) // 2, (ph - FACE_SIZE) // 2
                frame_boxes.append((left + offset_x, top + offset_y, FACE_SIZE, FACE_SIZE))
        frames.append(frame)
        boxes.append(frame_boxes)
    return frames, boxes
