"""Face detectors: one set of options (DetectorOptions) builds either detector; YuNet runs through
OpenCV's FaceDetectorYN (with a stand-in model: the real one is not on PyPI)."""

import dataclasses
import inspect

import numpy as np
import pytest

from ferlight.errors import ConfigError
from ferlight.inference.detection import (
    DETECT_SCALE,
    MIN_FACE,
    MIN_NEIGHBORS,
    SCALE_FACTOR,
    DetectorOptions,
    HaarDetector,
    YuNetDetector,
    create_detector,
)
from ferlight.inference.recognizer import Recognizer
from ferlight.testing.fake_yunet import write_fake_yunet


def test_default_detector_is_the_tuned_haar_cascade():
    detector = create_detector()
    assert isinstance(detector, HaarDetector)
    assert (detector.scale_factor, detector.min_neighbors, detector.min_face, detector.detect_scale) == (
        SCALE_FACTOR, MIN_NEIGHBORS, MIN_FACE, DETECT_SCALE
    )


def test_every_search_option_reaches_a_detector():
    """Each option beyond the choice of detector is a parameter of the Haar or YuNet detector, so
    create_detector hands it on by name."""
    taken = set(inspect.signature(HaarDetector).parameters) | set(inspect.signature(YuNetDetector).parameters)
    names = {f.name for f in dataclasses.fields(DetectorOptions)} - {"detector", "detector_model"}
    assert names <= taken
    detector = create_detector(DetectorOptions(scale_factor=1.2, min_neighbors=2, min_face=30, detect_scale=0.5))
    assert (detector.scale_factor, detector.min_neighbors, detector.min_face, detector.detect_scale) == (1.2, 2, 30, 0.5)


@pytest.mark.parametrize(
    "options, message",
    [
        (DetectorOptions(detector="mtcnn"), "unknown detector 'mtcnn'; choose from haar, yunet"),
        (DetectorOptions(detector="yunet"), "needs its ONNX model file"),
        (DetectorOptions(detector_model="x.onnx"), "only used by the yunet"),
        (DetectorOptions(detector="yunet", detector_model="missing.onnx"), "YuNet model not found"),
        (DetectorOptions(min_face=0), "min_face"),
        (DetectorOptions(detect_scale=0.0), "detect_scale"),
        (DetectorOptions(min_neighbors=-1), "min_neighbors"),
    ],
)
def test_bad_detector_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        create_detector(options)


def test_yunet_model_that_is_not_onnx_is_refused(tmp_path):
    bad = tmp_path / "yunet.onnx"
    bad.write_text("not a model")
    with pytest.raises(ConfigError, match="not a YuNet ONNX model") as error:
        create_detector(DetectorOptions("yunet", bad))
    assert "error: " not in str(error.value) and "\n" not in str(error.value)  # OpenCV's own prefix and tail gone


def test_yunet_detector_runs_opencvs_face_detector_yn(tmp_path, checkpoint):
    model = write_fake_yunet(tmp_path / "yunet.onnx")
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[192:256, 256:320] = 255  # at detect_scale 0.5: the stride-32 cell (4, 3), all white
    detector = create_detector(DetectorOptions("yunet", model, detect_scale=0.5))
    # The fake's box there: 64 px centred on (128, 96), i.e. (96, 64, 64, 64), doubled back.
    assert detector.detect(frame).tolist() == [[192, 128, 128, 128]]
    assert detector.detect_near(frame, np.array([[0, 0, 50, 50]])).tolist() == [[192, 128, 128, 128]]
    assert len(create_detector(DetectorOptions("yunet", model, min_face=200)).detect(frame)) == 0
    recognizer = Recognizer.from_checkpoint(checkpoint, detector="yunet", detector_model=model, detect_scale=0.5)
    assert [f.box for f in recognizer(frame)] == [(192, 128, 128, 128)]
