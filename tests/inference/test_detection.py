"""Face detectors: one set of options (DetectorOptions) builds any detector; MTCNN finds real faces
in frames; YuNet runs through OpenCV's FaceDetectorYN (with a stand-in model: the real one is not
on PyPI)."""

import dataclasses
import inspect

import cv2
import numpy as np
import pytest

from ferlight.errors import ConfigError
from ferlight.inference.detection import (
    DETECT_SCALE,
    FACE_PROBABILITY,
    MIN_FACE,
    MIN_NEIGHBORS,
    MTCNN_MIN_FACE,
    SCALE_FACTOR,
    DetectorOptions,
    HaarDetector,
    MtcnnDetector,
    YuNetDetector,
    create_detector,
    even_exposure,
)
from ferlight.inference.detection import VERIFIER_PROBABILITY
from ferlight.inference.face_verifier import FaceVerifier
from ferlight.inference.boxes import box_iou
from ferlight.inference.recognizer import Recognizer
from ferlight.testing.fake_yunet import write_fake_yunet
from ferlight.testing.live_clips import PHOTO_FACES, background, photo


def test_default_detector_is_mtcnn_with_the_tuned_search():
    detector = create_detector()
    assert isinstance(detector, MtcnnDetector)
    assert (detector.min_face, detector.detect_scale, detector.faces.thresholds[2]) == (MTCNN_MIN_FACE, DETECT_SCALE, FACE_PROBABILITY)
    haar = create_detector(DetectorOptions(detector="haar"))
    assert (haar.scale_factor, haar.min_neighbors, haar.min_face, haar.detect_scale) == (SCALE_FACTOR, MIN_NEIGHBORS, MIN_FACE, DETECT_SCALE)


def test_every_search_option_reaches_a_detector():
    """Each option beyond the choice of detector is a parameter of some detector, so
    create_detector hands it on by name."""
    taken = set().union(*(inspect.signature(d).parameters for d in (HaarDetector, MtcnnDetector, YuNetDetector)))
    names = {f.name for f in dataclasses.fields(DetectorOptions)} - {"detector", "detector_model"}
    assert names <= taken
    haar = create_detector(DetectorOptions(detector="haar", scale_factor=1.2, min_neighbors=2, min_face=30, detect_scale=0.5))
    assert (haar.scale_factor, haar.min_neighbors, haar.min_face, haar.detect_scale) == (1.2, 2, 30, 0.5)
    mtcnn = create_detector(DetectorOptions(min_face=30, detect_scale=0.5, face_probability=0.9))
    assert (mtcnn.min_face, mtcnn.detect_scale, mtcnn.faces.thresholds[2]) == (30, 0.5, 0.9)


def test_mtcnn_finds_the_face_in_a_real_photograph_grey_or_colour():
    image = photo("astronaut")  # 512 x 512, the face at PHOTO_FACES["astronaut"]
    detector = create_detector()
    for frame in (image, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)):
        boxes = detector.detect(frame)
        assert len(boxes) == 1 and box_iou(boxes, np.array([PHOTO_FACES["astronaut"]]))[0, 0] > 0.5
    assert len(create_detector(DetectorOptions(min_face=150)).detect(image)) == 0  # the face is about 100 px


def test_mtcnn_finds_a_small_blurred_face_on_a_busy_background_and_nothing_without_one():
    """What the Haar cascade misses (bench/RESULTS.md): a 70 px blurred face on a natural image."""
    frame = background("brick").copy()
    x, y, w, h = PHOTO_FACES["hopper"]
    face = cv2.resize(photo("hopper")[y - h // 4 : y + h + h // 4, x - w // 4 : x + w + w // 4], (105, 105), interpolation=cv2.INTER_AREA)
    frame[200:305, 300:405] = face
    frame = cv2.GaussianBlur(frame, (0, 0), 2.0)
    truth = np.array([[300 + 105 // 6, 200 + 105 // 6, 70, 70]])  # the face without its context
    boxes = create_detector().detect(frame)
    assert len(boxes) == 1 and box_iou(boxes, truth)[0, 0] > 0.4
    assert len(create_detector().detect(background("brick"))) == 0
    near = create_detector().detect_near(frame, boxes + (8, -6, 0, 0))  # where a tracker would look next
    assert len(near) == 1 and box_iou(near, boxes)[0, 0] > 0.6


def test_still_images_have_their_exposure_evened_out_before_the_search():
    mid = np.full((10, 10), 128, np.uint8)
    assert even_exposure(mid) is mid
    for mean in (30, 220):
        assert abs(even_exposure(np.full((10, 10, 3), mean, np.uint8)).mean() - 127.5) < 2
    image = photo("astronaut").astype(np.float32)
    detector = create_detector()
    for dim in (image * 20 / 255, 200 + image * 55 / 255):  # under-exposed (grey 0-20), over-exposed (200-255)
        dim = dim.astype(np.uint8)
        assert len(detector.detect(dim)) == 0  # a video frame's search misses the face
        boxes = detector.detect(dim, still=True)
        assert len(boxes) == 1 and box_iou(boxes, np.array([PHOTO_FACES["astronaut"]]))[0, 0] > 0.5


def test_a_still_image_is_searched_at_full_size_for_smaller_faces_than_a_frame():
    image = photo("astronaut")
    detector = create_detector()
    x, y, side, _ = PHOTO_FACES["astronaut"]
    scale = 38 / side  # a 38 px face: under MTCNN's 45 px for frames, over its 36 px for stills
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
    truth = np.array([[200 + x * scale, 100 + y * scale, 38, 38]])
    assert len(detector.detect(canvas)) == 0
    boxes = detector.detect(canvas, still=True)
    assert len(boxes) == 1 and box_iou(boxes, truth)[0, 0] > 0.6


def test_the_face_verifier_has_the_last_word_on_still_images_only():
    image = photo("astronaut")
    truth = np.array([PHOTO_FACES["astronaut"]])
    detector = create_detector()
    assert isinstance(detector.verifier, FaceVerifier) and detector.verifier_probability == VERIFIER_PROBABILITY
    (box,) = detector.detect(image, still=True)
    assert box_iou(box[None], truth)[0, 0] > 0.5
    seen = []
    detector.verifier = lambda grey, boxes: seen.append((grey.ndim, len(boxes))) or np.zeros(len(boxes))  # doubts every box
    assert len(detector.detect(image, still=True)) == 0 and seen == [(2, 1)]
    assert len(detector.detect(image)) == 1 and len(seen) == 1  # a video frame's search asks no verifier
    # With the verifier on, MTCNN's last stage keeps more boxes for it to judge than face_probability would.
    detector.verifier = lambda grey, boxes: np.ones(len(boxes))
    unverified = create_detector(DetectorOptions(verifier_probability=0))
    assert unverified.verifier is None
    busy = background("grass")
    assert len(detector.detect(busy, still=True)) >= len(unverified.detect(busy, still=True))


@pytest.mark.parametrize(
    "options, message",
    [
        (DetectorOptions(detector="dlib"), "unknown detector 'dlib'; choose from haar, mtcnn, yunet"),
        (DetectorOptions(detector="yunet"), "needs its ONNX model file"),
        (DetectorOptions(detector_model="x.onnx"), "only used by the yunet"),
        (DetectorOptions(min_neighbors=2), r"min_neighbors \(--min-neighbors\) is only used by the haar detector, not mtcnn"),
        (DetectorOptions(detector="haar", face_probability=0.9), "only used by the mtcnn and yunet detector, not haar"),
        (DetectorOptions(detector="yunet", detector_model="missing.onnx"), "YuNet model not found"),
        (DetectorOptions(min_face=0), "min_face"),
        (DetectorOptions(detect_scale=0.0), "detect_scale"),
        (DetectorOptions(detector="haar", min_neighbors=-1), "min_neighbors"),
        (DetectorOptions(face_probability=1.0), "face_probability"),
        (DetectorOptions(verifier_probability=1.0), "verifier_probability"),
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
    # verifier_probability=0: the fake's white square is no face, which the still search's verifier would see.
    recognizer = Recognizer.from_checkpoint(checkpoint, detector="yunet", detector_model=model, detect_scale=0.5, verifier_probability=0)
    assert [f.box for f in recognizer(frame)] == [(192, 128, 128, 128)]
