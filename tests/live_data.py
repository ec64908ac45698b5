"""Test data for live inference: a synthetic video of real faces.

The faces are the sample photos that ship inside PyPI packages (scikit-image's astronaut, Eileen
Collins, and matplotlib's Grace Hopper), so no data has to be downloaded. :func:`compose_frames`
returns the frames with the true face box of every face in every frame; frames listed in
``empty`` show the background alone.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ferlight.testing.live_clips import PHOTO_FACES, photo, write_video  # noqa: F401  (write_video: for the tests)

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


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
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
    base = background(width, height)
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


def write_fake_yunet(path: str | os.PathLike):
    """A stand-in for OpenCV Zoo's YuNet ONNX model (not shipped, not downloadable here).

    It has YuNet's inputs and outputs, so ``cv2.FaceDetectorYN`` runs it, but it "detects" white
    squares: a stride-32 cell whose pixels reach 255 scores 1, every other cell 0, and its box is
    64 x 64 centred on the cell's top-left corner (OpenCV decodes centre = cell * 32, side =
    exp(log 2) * 32). The stride-8 and stride-16 outputs score 0 everywhere.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32 if name != "shape" else np.int64), name)

    nodes, inits = [], [const("shape", [1, -1, 1]), const("zero", 0.0), const("k", 1 / 255)]
    inits += [const("box", [0, 0, np.log(2.0), np.log(2.0)]), const("landmarks", np.zeros(10))]
    for s in (8, 16, 32):
        nodes.append(helper.make_node("MaxPool", ["input"], [f"pool{s}"], kernel_shape=[s, s], strides=[s, s]))
        nodes.append(helper.make_node("ReduceMax", [f"pool{s}"], [f"max{s}"], keepdims=1, axes=[1]))
        nodes.append(helper.make_node("Reshape", [f"max{s}", "shape"], [f"cells{s}"]))
        nodes.append(helper.make_node("Mul", [f"cells{s}", "zero"], [f"zeros{s}"]))
        nodes.append(helper.make_node("Mul", [f"cells{s}", "k" if s == 32 else "zero"], [f"cls_{s}"]))
        nodes.append(helper.make_node("Identity", [f"cls_{s}"], [f"obj_{s}"]))
        nodes.append(helper.make_node("Add", [f"zeros{s}", "box"], [f"bbox_{s}"]))
        nodes.append(helper.make_node("Add", [f"zeros{s}", "landmarks"], [f"kps_{s}"]))
    outputs = [
        helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, [1, f"n{s}", width])
        for kind, width in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))
        for s in (8, 16, 32)
    ]
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    graph = helper.make_graph(nodes, "fake_yunet", [image], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
