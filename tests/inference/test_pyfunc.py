"""The pyfunc model: faces give the probabilities ferlight.evaluate gives, images are searched for
faces, and bad input is one clear message."""

from __future__ import annotations

import base64

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from ferlight.data import CLASS_NAMES
from ferlight.evaluation.predict import predict_proba
from ferlight.inference.checkpoint import load_model
from ferlight.inference.pyfunc import CHECKPOINT, EmotionModel, input_example, signature
from ferlight.testing.live_clips import photo


@pytest.fixture(scope="module")
def model(checkpoint, tmp_path_factory):
    """The pyfunc model of the random-weight checkpoint, saved and loaded back as MLflow does."""
    path = tmp_path_factory.mktemp("pyfunc") / "model"
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    mlflow.pyfunc.save_model(
        path, python_model=EmotionModel(), artifacts={CHECKPOINT: str(checkpoint)},
        signature=signature(CLASS_NAMES), input_example=input_example(faces), pip_requirements=["torch"],
    )
    return mlflow.pyfunc.load_model(str(path))


def test_faces_get_evaluates_probabilities(model, checkpoint):
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    expected = predict_proba([load_model(checkpoint)], faces)
    for given in (pd.DataFrame({"face": [f.tolist() for f in faces]}), input_example(faces)):  # 0-255 and [0, 1]
        out = model.predict(given)
        assert list(out["row"]) == list(range(5)) and list(out.columns[-len(CLASS_NAMES):]) == list(CLASS_NAMES)
        assert np.allclose(out[list(CLASS_NAMES)].to_numpy(), expected, atol=1e-4)
        assert list(out["label"]) == [CLASS_NAMES[k] for k in expected.argmax(1)]


def test_encoded_images_are_searched_for_faces(model):
    png = cv2.imencode(".png", photo("astronaut"))[1].tobytes()
    for value in (png, base64.b64encode(png).decode()):  # bytes, or base64 text as JSON carries them
        out = model.predict(pd.DataFrame({"image": [value]}))
        assert len(out) == 1 and out.loc[0, "width"] > 60
        assert np.isclose(out[list(CLASS_NAMES)].to_numpy().sum(), 1.0, atol=1e-4)


@pytest.mark.parametrize("frame,message", [
    (pd.DataFrame({"image": [cv2.imencode(".png", np.full((120, 120, 3), 90, np.uint8))[1].tobytes()]}), "row 0: no face found"),
    (pd.DataFrame({"image": [b"not an image"]}), "row 0: image is not a PNG, JPEG"),
    (pd.DataFrame({"face": [np.zeros((40, 40)).tolist()]}), "row 0: a face must be 48 x 48"),
])
def test_bad_input_is_one_clear_message(model, frame, message):
    with pytest.raises(MlflowException, match=message):
        model.predict(frame)
