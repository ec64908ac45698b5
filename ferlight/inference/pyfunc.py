"""ferlight's model as an MLflow pyfunc model: faces or encoded images in, one row per face out.

The logged model holds the slim checkpoint as its one artifact. ``predict`` takes a DataFrame
with, per row, either ``face`` (a grey face, 48 x 48, uint8 or floats in [0, 1]) or ``image``
(PNG/JPEG bytes, or base64 text as JSON carries them; its faces are found by ferlight's detector).
It returns one row per face: the input row, the face's box, the label and the probability of each
class. Faces get the same preprocessing and test-time views as ``python -m ferlight.evaluate``
(float32), images the same detection and crops as ``python -m ferlight.live``.
"""

from __future__ import annotations

import base64
import binascii
import importlib.metadata
import re

import cv2
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import AnyType, Array, ColSpec, Schema

from ferlight import __version__
from ferlight.data.preprocess import IMAGE_SIZE
from ferlight.evaluation.predict import predict_proba
from ferlight.inference.checkpoint import load_model
from ferlight.inference.recognizer import Recognizer

CHECKPOINT = "checkpoint"  # the artifact's key
INPUT = Schema([
    ColSpec(AnyType(), "image", required=False),  # bytes, or base64 text (decoded here, so rows may mix faces and images)
    ColSpec(Array(Array(AnyType())), "face", required=False),  # 48 rows of 48: ints 0-255 or floats in [0, 1]
])
BOX = ("x", "y", "width", "height")


def signature(class_names) -> ModelSignature:
    outputs = [ColSpec("long", "row"), *(ColSpec("long", name) for name in BOX), ColSpec("string", "label")]
    return ModelSignature(INPUT, Schema(outputs + [ColSpec("double", name) for name in class_names]))


def requirements() -> list[str]:
    """The model's pip requirements: ferlight at this version, torch as the range ferlight accepts."""
    torch_range = next(r for r in importlib.metadata.requires("ferlight") if re.match(r"torch(?![\w-])", r))
    return [f"ferlight=={__version__}", torch_range]


def input_example(faces: np.ndarray) -> pd.DataFrame:
    """Faces (uint8 N x 48 x 48) as the model's input, e.g. test faces for the logged example."""
    return pd.DataFrame({"face": [(face / 255.0).round(4).tolist() for face in faces]})


def _bad_input(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _face(row: int, value) -> np.ndarray:
    face = np.asarray(value, dtype=np.float32)
    if face.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise _bad_input(f"row {row}: a face must be {IMAGE_SIZE} x {IMAGE_SIZE} grey pixels, got shape {face.shape}")
    return face * 255.0 if face.max(initial=0) <= 1.0 else face


def _image(row: int, value) -> np.ndarray:
    try:
        data = base64.b64decode("".join(value.split()), validate=True) if isinstance(value, str) else bytes(value)
    except (binascii.Error, TypeError, ValueError):
        raise _bad_input(f"row {row}: image is neither bytes nor base64 text") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise _bad_input(f"row {row}: image is not a PNG, JPEG or other image OpenCV reads")
    return image


class EmotionModel(PythonModel):
    """The pyfunc model; see the module docstring."""

    def load_context(self, context) -> None:
        self.model = load_model(context.artifacts[CHECKPOINT])
        self.tta = (context.model_config or {}).get("tta", "none")
        self.recognizer = Recognizer(self.model, smoothing=0.0, precision="32-true")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rows, boxes, probabilities = [], [], []
        faces = [(i, _face(i, v)) for i, v in enumerate(model_input.get("face", [])) if _present(v)]
        if faces:
            stacked = np.stack([face for _, face in faces])
            probabilities.append(predict_proba([self.model], stacked, tta=self.tta, precision="32-true"))
            rows += [i for i, _ in faces]
            boxes += [(0, 0, IMAGE_SIZE, IMAGE_SIZE)] * len(faces)
        face_rows = set(rows)
        for i, value in enumerate(model_input.get("image", [])):
            if not _present(value) or i in face_rows:
                continue
            found = self.recognizer(_image(i, value))
            if not found:
                raise _bad_input(f"row {i}: no face found in the image")
            rows += [i] * len(found)
            boxes += [face.box for face in found]
            probabilities.append(np.array([[face.probabilities[n] for n in self.model.class_names] for face in found]))
        if not rows:
            raise _bad_input("no input: give each row a 'face' (48 x 48 grey) or an 'image' (PNG/JPEG bytes)")
        return _table(rows, boxes, np.concatenate(probabilities), self.model.class_names)


def _table(rows, boxes, probabilities: np.ndarray, class_names) -> pd.DataFrame:
    order = np.argsort(rows, kind="stable")  # faces in input order, an image's faces together
    table = pd.DataFrame(np.asarray(boxes)[order], columns=list(BOX))
    table.insert(0, "row", np.asarray(rows)[order])
    table["label"] = [class_names[k] for k in probabilities[order].argmax(1)]
    for k, name in enumerate(class_names):
        table[name] = probabilities[order, k].astype(float)
    return table
