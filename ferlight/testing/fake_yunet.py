"""A stand-in for OpenCV Zoo's YuNet face detector model, which no PyPI package ships.

Needs onnx (the test extra).
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_fake_yunet(path: str | os.PathLike) -> str | os.PathLike:
    """A stand-in for OpenCV Zoo's YuNet ONNX model (not shipped, not downloadable here).

    It has YuNet's inputs and outputs, so ``cv2.FaceDetectorYN`` runs it, but it "detects" white
    squares: a stride-32 cell whose pixels reach 255 scores 1, every other cell 0, and its box is
    64 x 64 centred on the cell's top-left corner (OpenCV decodes centre = cell * 32, side =
    exp(log 2) * 32). The stride-8 and stride-16 outputs score 0 everywhere.
    """
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
