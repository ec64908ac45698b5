"""The Recognizer: faces found, the evaluation's probabilities in one batch, tracking and
smoothing on video, the whole-frame search schedule, options and bad input.

Faces are real photos shipped by scikit-image and matplotlib, composed into a synthetic video
(ferlight.testing.synthetic_clip). The model has random weights: these tests check where faces are
and how results flow, not which emotion wins.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
import torch

import ferlight.data
from ferlight.data.preprocess import eval_transform
from ferlight.errors import CheckpointError, ConfigError, DataError
from ferlight.inference.boxes import box_iou
from ferlight.inference.checkpoint import load_model
from ferlight.inference.crops import face_crops
from ferlight.inference.detection import FaceDetector, even_exposure
from ferlight.inference.recognizer import CROP_EXPOSURE, Face, Recognizer, RecognizerOptions
from ferlight.testing.checkpoints import save_checkpoint
from ferlight.testing.live_clips import ClipSpec, FacePath, background, photo_face, render, write_video
from ferlight.testing.live_scoring import score_clip
from ferlight.testing.synthetic_clip import compose_frames

CLASS_NAMES = tuple(ferlight.data.CLASS_NAMES)
EMPTY = (0, 1, 10, 11)  # frames of the test clip without faces


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread."""


@pytest.fixture(scope="module")
def recognizer(checkpoint):
    """float32, so that results can be compared with the model's own to 1e-5."""
    return Recognizer.from_checkpoint(checkpoint, precision="32-true")


@pytest.fixture(scope="module")
def clip():
    """Frames of two moving faces (none in EMPTY) and the true face boxes of each frame."""
    return compose_frames(n_frames=16, n_faces=2, empty=EMPTY)


def assert_boxes_match(found, truth, min_iou=0.6):
    """Each true face found once, each found box on a true face."""
    assert len(found) == len(truth), (found, truth)
    if truth:
        iou = box_iou(np.array(found), np.array(truth))
        assert (iou.max(axis=1) >= min_iou).all(), iou
        assert (iou.max(axis=0) >= min_iou).all(), iou


def test_image_faces_are_found_where_they_are(recognizer, clip):
    frames, boxes = clip
    faces = recognizer(frames[3])
    assert_boxes_match([f.box for f in faces], boxes[3])
    assert [f.box for f in faces] == sorted(f.box for f in faces)  # left to right, whatever the threads did
    for face in faces:
        assert face.track_id is None
        assert tuple(face.probabilities) == CLASS_NAMES
        assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert face.label == max(face.probabilities, key=face.probabilities.get)


def test_grey_and_bgra_images_work_like_bgr(recognizer, clip):
    frame = clip[0][4]
    expected = [f.box for f in recognizer(frame)]
    assert [f.box for f in recognizer(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))] == expected
    assert [f.box for f in recognizer(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))] == expected


def test_image_without_faces_gives_no_faces(recognizer, clip):
    assert recognizer(clip[0][0]) == []


def test_classify_uses_the_training_preprocessing_in_one_batch(checkpoint, recognizer, clip):
    frame, (x, y, w, h) = clip[0][3], clip[1][3][0]
    crop = frame[y : y + h, x : x + w]
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    model = load_model(checkpoint).model
    with torch.inference_mode():
        expected = torch.softmax(model(eval_transform(torch.from_numpy(grey[None]))), 1).numpy()
    other = frame[0:60, 0:80]
    batch = recognizer.classify([crop, other])
    assert batch.shape == (2, len(CLASS_NAMES))
    np.testing.assert_allclose(batch[0], expected[0], atol=1e-5)
    np.testing.assert_allclose(batch[1], recognizer.classify([other])[0], atol=1e-5)
    assert recognizer.classify([]).shape == (0, len(CLASS_NAMES))


def assert_same_faces(found, expected):
    """The same boxes, track ids and labels, and the same probabilities to 1e-4."""
    assert [(f.box, f.track_id, f.label) for f in found] == [(f.box, f.track_id, f.label) for f in expected]
    for a, b in zip(found, expected):
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-4)


def count_batches(monkeypatch, recognizer) -> list[int]:
    """The number of faces in each batch that goes through ``recognizer``'s model, from now on."""
    batches, classify = [], recognizer.classify
    monkeypatch.setattr(recognizer, "classify", lambda faces, *tta: batches.append(len(faces)) or classify(faces, *tta))
    return batches


def test_a_batch_of_images_gives_what_each_image_gives_alone_in_one_model_batch(monkeypatch, recognizer, clip):
    frames = clip[0]
    images = [frames[3], frames[0], cv2.cvtColor(frames[6], cv2.COLOR_BGR2GRAY), cv2.cvtColor(frames[9], cv2.COLOR_BGR2BGRA)]
    alone = [recognizer(image) for image in images]
    assert [len(faces) for faces in alone] == [2, 0, 2, 2]
    batches = count_batches(monkeypatch, recognizer)
    together = recognizer.recognize_batch(images)
    assert batches == [6]
    assert len(together) == len(images)
    for found, expected in zip(together, alone):
        assert_same_faces(found, expected)
    assert recognizer.recognize_batch([]) == []


def test_photos_are_searched_on_several_threads_and_keep_their_order(monkeypatch, checkpoint, clip):
    frames = clip[0]
    images = [frames[3], frames[0], frames[6], frames[9]]
    one = Recognizer.from_checkpoint(checkpoint, precision="32-true", photo_workers=1).recognize_batch(images)
    two = Recognizer.from_checkpoint(checkpoint, precision="32-true", photo_workers=2)
    both_searching = threading.Barrier(2, timeout=10)  # broken unless two searches run at once
    search = two.detector.detect

    def detect_beside_another(image, still=False):
        both_searching.wait()
        return search(image, still)

    monkeypatch.setattr(two.detector, "detect", detect_beside_another)
    together = two.recognize_batch(images)
    assert [len(faces) for faces in together] == [2, 0, 2, 2]
    for found, expected in zip(together, one):
        assert_same_faces(found, expected)
    # OpenCV's cascade object is not thread-safe: it searches one photo at a time.
    assert Recognizer.from_checkpoint(checkpoint, detector="haar", photo_workers=2).photo_workers == 1


def test_a_folder_of_photos_goes_through_the_model_a_few_images_at_a_time(tmp_path, monkeypatch, recognizer, clip):
    frames = clip[0]
    for i in range(1, 6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frames[i])
    batches = count_batches(monkeypatch, recognizer)
    results = list(recognizer.process_video(tmp_path, images_per_batch=2))
    assert batches == [2, 4, 2]  # frame 1: no face; 2-5: two each
    assert [(r.index, r.name) for r in results] == [(i, f"{i + 1}.png") for i in range(5)]
    for result in results:
        assert_same_faces(result.faces, recognizer(frames[int(result.name[0])]))
        assert result.detect_ms > 0 and result.classify_ms > 0
    assert [r.name for r in recognizer.process_video(tmp_path, max_frames=3)] == ["1.png", "2.png", "3.png"]
    with pytest.raises(ConfigError, match="images_per_batch"):
        next(recognizer.process_video(tmp_path, images_per_batch=0))


def test_a_folders_next_photos_are_searched_while_a_batch_is_classified(tmp_path, monkeypatch, checkpoint, clip):
    frames = clip[0]
    for i in range(2, 6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frames[i])
    recognizer = Recognizer.from_checkpoint(checkpoint, precision="32-true")
    search, classify = recognizer.detector.detect, recognizer.classify
    searched, next_search_began = [], threading.Event()
    overlapped = []

    def detect(image, still=False):
        searched.append(image)
        if len(searched) > 2:
            next_search_began.set()
        return search(image, still)

    def classify_beside_the_next_search(crops, tta="none"):
        overlapped.append(next_search_began.wait(timeout=5) if not overlapped else True)
        return classify(crops, tta)

    monkeypatch.setattr(recognizer.detector, "detect", detect)
    monkeypatch.setattr(recognizer, "classify", classify_beside_the_next_search)
    results = list(recognizer.process_video(tmp_path, images_per_batch=2))
    assert [r.name for r in results] == ["2.png", "3.png", "4.png", "5.png"]
    assert overlapped == [True, True]  # photos 4 and 5 were being searched while 2 and 3 were classified
    for result in results:
        assert len(result.faces) == 2


def test_model_trained_on_crops_gets_its_crop(tmp_path, clip):
    path = save_checkpoint(tmp_path / "crop44.ckpt", crop_size=44)
    recognizer = Recognizer.from_checkpoint(path)
    assert recognizer.crop_size == 44
    assert len(recognizer(clip[0][3])) == 2


@pytest.mark.parametrize("detect_every", [1, 4])
def test_video_faces_found_and_tracked(tmp_path, checkpoint, clip, detect_every):
    frames, boxes = clip
    video = tmp_path / "clip.mp4"
    write_video(video, frames, fps=20)
    recognizer = Recognizer(load_model(checkpoint), detect_every=detect_every)
    results = list(recognizer.process_video(video))
    assert [r.index for r in results] == list(range(len(frames)))
    assert [r.timestamp for r in results] == pytest.approx([i / 20 for i in range(len(frames))])
    ids_per_face: dict[int, set] = {0: set(), 1: set()}
    for result, truth in zip(results, boxes):
        assert_boxes_match([f.box for f in result.faces], truth)
        for face in result.faces:
            nearest = int(np.argmax(box_iou(np.array([face.box]), np.array(truth))[0]))
            ids_per_face[nearest].add(face.track_id)
        assert result.detect_ms > 0
    # Each face keeps one id, even across the two empty frames, and the two ids differ.
    assert all(len(ids) == 1 for ids in ids_per_face.values()), ids_per_face
    assert ids_per_face[0] != ids_per_face[1]


class ScriptedDetector(FaceDetector):
    """Finds two faces in a full search; near known faces, finds what ``near`` says, in turn."""

    def __init__(self, near):
        super().__init__()
        self.near, self.calls = iter(near), []

    def detect(self, image, still=False):
        self.calls.append("full")
        return np.array([[10, 10, 60, 60], [200, 10, 60, 60]])

    def detect_near(self, image, boxes):
        self.calls.append("near")
        return boxes[: next(self.near)]


def test_whole_frame_is_searched_every_n_frames_and_at_once_when_a_face_is_lost(checkpoint):
    detector = ScriptedDetector(near=[2, 1, 2, 2, 2, 2, 2])
    recognizer = Recognizer(load_model(checkpoint), detector, detect_every=3, near_every=1)
    frames = [np.zeros((120, 320), dtype=np.uint8)] * 8
    found = [len(r.faces) for r in recognizer.process_video(frames)]
    # Frame 2 loses a face near its box: the whole frame is searched in that same frame.
    assert detector.calls == ["full", "near", "near", "full", "near", "near", "near", "full", "near", "near"]
    assert found == [2] * 8


class MovingDetector(ScriptedDetector):
    """Two faces, the second moving ``step`` px a frame to the right: near its box, each is found
    where it now is."""

    def __init__(self, step):
        super().__init__(near=[])
        self.step, self.frame = step, 0

    def detect(self, image, still=False):
        self.calls.append("full")
        return self.boxes()

    def detect_near(self, image, boxes):
        self.calls.append("near")
        return self.boxes()

    def boxes(self):
        return np.array([[10, 10, 60, 60], [200 + self.step * self.frame, 10, 60, 60]])


def test_steady_faces_are_searched_near_their_boxes_every_other_frame_and_moving_ones_every_frame(checkpoint):
    frames = [np.zeros((120, 320), dtype=np.uint8)] * 7
    for step, expected in ((0, ["full", "near", "skip", "near", "skip", "near", "skip"]), (6, ["full"] + ["near"] * 6)):
        detector = MovingDetector(step)
        recognizer = Recognizer(load_model(checkpoint), detector, detect_every=10)
        calls, boxes = [], []
        for result in recognizer.process_video(frames):
            calls.append(detector.calls.pop() if detector.calls else "skip")
            boxes.append(sorted(face.box for face in result.faces))
            detector.frame += 1
        assert calls == expected, step
        assert boxes[2] == [(10, 10, 60, 60), (200 + 2 * step, 10, 60, 60)]  # a skipped frame keeps the predicted box


def test_video_from_numpy_frames_and_max_frames(recognizer, clip):
    results = list(recognizer.process_video(iter(clip[0]), max_frames=5))
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [len(r.faces) for r in results] == [0, 0, 2, 2, 2]
    assert results[0].timestamp is None


def test_smoothing_off_gives_each_frame_its_own_probabilities(checkpoint, clip):
    raw = Recognizer.from_checkpoint(checkpoint, smoothing=0.0)
    for result in raw.process_video(clip[0][2:6]):
        for face in result.faces:
            expected = raw.classify(face_crops(result.image, np.array([face.box])))[0]
            np.testing.assert_allclose(list(face.probabilities.values()), expected, atol=1e-5)


def test_face_json_is_plain_data():
    face = Face((1, 2, 3, 4), {"angry": 0.25, "happy": 0.75}, "happy", 7)
    assert face.to_json() == {"box": [1, 2, 3, 4], "track_id": 7, "label": "happy", "probabilities": {"angry": 0.25, "happy": 0.75}}


def test_run_id_loads_the_runs_best_checkpoint(monkeypatch, checkpoint):
    import ferlight.tracking.checkpoints

    asked = []
    monkeypatch.setattr(ferlight.tracking.checkpoints, "best_checkpoint", lambda run_id, uri=None: asked.append((run_id, uri)) or checkpoint)
    recognizer = Recognizer.from_checkpoint(run_id="abc123", tracking_uri="sqlite:///x.db")
    assert asked == [("abc123", "sqlite:///x.db")]
    assert recognizer.class_names == CLASS_NAMES


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a ferlight checkpoint"):
        Recognizer.from_checkpoint(path)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"run_id": "abc"}, "not both"),
        ({"device": "toaster"}, "unknown device"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"detect_every": 0}, "detect_every"),
        ({"detect_scale": 2.0}, "detect_scale"),
        ({"detector": "haar", "scale_factor": 1.0}, "scale_factor"),
        ({"min_face": 0}, "min_face"),
        ({"detector": "dlib"}, "unknown detector"),
        ({"detector": "yunet"}, "needs its ONNX model file"),
        ({"detector_model": "x.onnx"}, "only used by the yunet"),
        ({"detector": "yunet", "detector_model": "missing.onnx"}, "YuNet model not found"),
    ],
)
def test_bad_options_are_config_errors(checkpoint, options, message):
    with pytest.raises(ConfigError, match=message):
        Recognizer.from_checkpoint(checkpoint, **options)


def test_recognizer_options_check_their_values_and_names(checkpoint):
    assert RecognizerOptions() == RecognizerOptions(detect_every=10, smoothing=0.8, precision="auto")
    with pytest.raises(ConfigError, match="detect_every must be a positive integer"):
        RecognizerOptions(detect_every=True)
    with pytest.raises(ConfigError, match="photo_workers must be a positive integer"):
        RecognizerOptions(photo_workers=0)
    with pytest.raises(ConfigError, match="smoothing must be in"):
        RecognizerOptions(smoothing=-0.1)
    with pytest.raises(TypeError, match="min_faces"):
        Recognizer.from_checkpoint(checkpoint, min_faces=50)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_a_config_error(checkpoint):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        Recognizer.from_checkpoint(checkpoint, device="cuda")


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((48, 48), dtype=np.float32), "uint8"),
        (np.zeros((48, 48, 2), dtype=np.uint8), "shape"),
        ([[0, 1], [2, 3]], "list"),
    ],
)
def test_bad_images_are_data_errors(recognizer, image, message):
    with pytest.raises(DataError, match=message):
        recognizer(image)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_gives_the_cpu_results(checkpoint, recognizer, clip):
    gpu = Recognizer.from_checkpoint(checkpoint, device="cuda")
    frame = clip[0][3]
    cpu_faces, gpu_faces = recognizer(frame), gpu(frame)
    assert [f.box for f in gpu_faces] == [f.box for f in cpu_faces]
    for a, b in zip(cpu_faces, gpu_faces):
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-3)


@pytest.mark.slow
def test_inference_needs_no_training_stack():
    """Nor matplotlib, which loads only when a timeline is drawn."""
    code = (
        "import sys, ferlight.inference.recognizer, ferlight.live; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'optuna', 'mlflow', 'torchmetrics', 'matplotlib'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def real_face_clip(speed: float, second_face_from: int | None, n_frames: int = 30) -> tuple[list, dict]:
    """Frames and ground truth of real photographs on a busy background, JPEG-compressed: the
    astronaut's face (110 px) moving ``speed`` px a frame, and Grace Hopper's (130 px), still,
    from frame ``second_face_from`` until 5 frames before the end."""
    moving = FacePath(photo_face("astronaut", 110, 0.4), (20.0, 60.0), (speed, speed / 4), (0.0, 0.0), (320.0, 480.0))
    paths = [moving]
    if second_face_from is not None:
        paths.append(FacePath(photo_face("hopper", 130, 0.4), (400.0, 150.0), (0.0, 0.0), (400.0, 150.0), (400.0, 150.0), first=second_face_from, last=n_frames - 6))
    frames, truth = render(ClipSpec("test", background("rocket"), paths, n_frames=n_frames, jpeg=60, noise=2.0))
    return frames, {"frames": truth}


def test_a_face_moving_10_px_a_frame_is_never_lost(recognizer):
    frames, truth = real_face_clip(speed=10.0, second_face_from=None)
    records = [result.to_json() for result in recognizer.process_video(frames)]
    score = score_clip(truth, records)
    assert (score.right_frames, score.missed, score.false, score.switches) == (30, 0, 0, 0)


def test_a_second_face_does_not_take_the_first_ones_track(recognizer):
    frames, truth = real_face_clip(speed=4.0, second_face_from=12)
    records = [result.to_json() for result in recognizer.process_video(frames)]
    ids = [sorted(face["track_id"] for face in record["faces"]) for record in records]
    # The moving face keeps its track throughout; the new face is found at the next whole-frame
    # search (frame 20: every detect_every = 10 frames) and gets a track of its own.
    assert recognizer.detect_every == 10
    assert ids[:20] == [[1]] * 20 and ids[20:25] == [[1, 2]] * 5 and ids[25:] == [[1]] * 5
    score = score_clip(truth, records)
    assert (score.missed, score.false, score.switches) == (8, 0, 0)


@pytest.mark.slow
def test_auto_precision_never_takes_bf16_without_native_bf16(tmp_path, checkpoint):
    """Under ONEDNN_MAX_CPU_ISA=AVX2 (a CPU without native bf16, where bf16 is ~10x slower), the
    live path runs in float32; an explicit precision wins; an unknown one is refused."""
    code = (
        "from ferlight.inference.recognizer import Recognizer; import sys; "
        "print(Recognizer.from_checkpoint(sys.argv[1]).precision.precision, "
        "Recognizer.from_checkpoint(sys.argv[1], precision='bf16-mixed').precision.precision)"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "FERLIGHT_CACHE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code, str(checkpoint)], capture_output=True, text=True, timeout=120, env=env, check=True)
    assert result.stdout.split() == ["32-true", "bf16-mixed"]
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        Recognizer.from_checkpoint(checkpoint, precision="fp8")


class OneBoxDetector(FaceDetector):
    """Finds one face, at a fixed box, in any image."""

    def detect(self, image, still=False):
        return np.array([[20, 10, 48, 60]])


def test_photos_average_each_face_with_its_mirror_and_video_takes_one_view(checkpoint):
    image = np.random.default_rng(0).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    crop = face_crops(image, OneBoxDetector().detect(image))[0]
    flip = Recognizer(load_model(checkpoint), OneBoxDetector(), precision="32-true")
    one = Recognizer(load_model(checkpoint), OneBoxDetector(), precision="32-true", photo_tta="none")
    assert flip.photo_tta == "flip" and RecognizerOptions().photo_tta == "flip"
    face_only, mirrored = one.classify([crop])[0], one.classify([crop[:, ::-1]])[0]
    assert not np.allclose(face_only, mirrored, atol=1e-4)
    np.testing.assert_allclose(list(flip(image)[0].probabilities.values()), (face_only + mirrored) / 2, atol=1e-5)
    np.testing.assert_allclose(list(one(image)[0].probabilities.values()), face_only, atol=1e-5)
    video = next(flip.process_video([image]))  # frames of a video: one view, no smoothing yet in frame 0
    np.testing.assert_allclose(list(video.faces[0].probabilities.values()), face_only, atol=1e-5)
    with pytest.raises(ConfigError):
        RecognizerOptions(photo_tta="tencrop")


def test_photos_even_out_each_face_crops_exposure_and_video_keeps_it(checkpoint):
    image = np.random.default_rng(1).integers(180, 256, (100, 120), dtype=np.uint8)  # a washed-out photo
    crop = face_crops(image, OneBoxDetector().detect(image))[0]
    even = Recognizer(load_model(checkpoint), OneBoxDetector(), precision="32-true", photo_tta="none")
    none = Recognizer(load_model(checkpoint), OneBoxDetector(), precision="32-true", photo_tta="none", photo_exposure="none")
    assert RecognizerOptions().photo_exposure == "even"
    np.testing.assert_allclose(list(even(image)[0].probabilities.values()), even.classify([even_exposure(crop, CROP_EXPOSURE)])[0], atol=1e-5)
    np.testing.assert_allclose(list(none(image)[0].probabilities.values()), none.classify([crop])[0], atol=1e-5)
    assert not np.allclose(even.classify([even_exposure(crop, CROP_EXPOSURE)])[0], even.classify([crop])[0], atol=1e-4)
    video = next(even.process_video([image]))
    np.testing.assert_allclose(list(video.faces[0].probabilities.values()), even.classify([crop])[0], atol=1e-5)
    with pytest.raises(ConfigError):
        RecognizerOptions(photo_exposure="clahe")
