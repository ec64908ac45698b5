"""``python -m ferlight.live``: sources, outputs, and one clear line with exit status 2 on bad input.

Most tests call :func:`ferlight.live.main` in-process (fast); two run the real module in a
subprocess to check what a user sees (one of them in the slow tier).
"""

from __future__ import annotations

import csv
import json
import re
import sys

import cv2
import numpy as np
import pytest

import ferlight.inference.checkpoint
import ferlight.inference.recognizer
from ferlight.data import CLASS_NAMES
from ferlight.live import build_parser, main
from ferlight.testing.fake_yunet import write_fake_yunet
from ferlight.testing.live_clips import ClipSpec, FacePath, background, photo_face, write_clip, write_video
from ferlight.testing.synthetic_clip import compose_frames

N_FRAMES = 10
EMPTY = (0, 7)  # frames of the test clip without faces
FPS = 10.0


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 10-frame video of two moving faces (none in frames 0 and 7), and its frames."""
    frames, boxes = compose_frames(n_frames=N_FRAMES, n_faces=2, empty=EMPTY)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, frames, fps=FPS)
    return path, frames, boxes


def run_main(capsys, *argv) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``main(argv)``."""
    try:
        main([str(a) for a in argv])
        status = 0
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_csv(path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def count_frames(path) -> int:
    """Frames decodable from a video file (reading them all proves it is playable)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"cannot open {path}"
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_flags_and_defaults():
    """The flags of the command, its own and those made from DetectorOptions and RecognizerOptions."""
    parser = build_parser()
    flags = set(re.findall(r"--[a-z][\w-]*", parser.format_help()))
    assert flags == {
        "--help", "--checkpoint", "--run-id", "--tracking-uri", "--device", "--precision", "--photo-workers", "--photo-search", "--photo-tta", "--photo-exposure", "--detector",
        "--detector-model", "--scale-factor", "--min-neighbors", "--face-probability", "--min-face", "--detect-scale", "--verifier-probability", "--detect-every",
        "--near-every", "--smoothing", "--no-display", "--output", "--jsonl", "--csv", "--timeline", "--max-frames", "--torch-threads", "--cv-threads",
    }
    defaults = parser.parse_args([])
    assert parser.parse_args(["a.jpg", "photos/", "--no-display"]).source == ["a.jpg", "photos/"]
    assert (defaults.source, defaults.device, defaults.precision, defaults.detector, defaults.detector_model) == ([0], "cpu", "auto", "mtcnn", None)
    assert (defaults.scale_factor, defaults.min_neighbors, defaults.face_probability, defaults.min_face, defaults.detect_scale) == (1.1, 4, 0.7, None, 0.75)
    assert (defaults.detect_every, defaults.near_every, defaults.smoothing) == (10, 2, 0.8)
    assert (defaults.no_display, defaults.torch_threads, defaults.cv_threads) == (False, 1, None)


def test_video_to_jsonl_and_annotated_video(tmp_path, capsys, checkpoint, clip):
    video, frames, boxes = clip
    out, log = tmp_path / "annotated.mp4", tmp_path / "faces.jsonl"
    status, stdout, _ = run_main(capsys, video, "--checkpoint", checkpoint, "--no-display", "--output", out, "--jsonl", log)
    assert status == 0
    assert f"{N_FRAMES} frames ({N_FRAMES - len(EMPTY)} with faces" in stdout
    records = read_jsonl(log)
    assert [r["frame"] for r in records] == list(range(N_FRAMES))
    assert [r["timestamp"] for r in records] == pytest.approx([i / FPS for i in range(N_FRAMES)])
    assert [len(r["faces"]) for r in records] == [len(b) for b in boxes]
    face = records[1]["faces"][0]
    assert set(face) == {"box", "track_id", "label", "probabilities"}
    assert list(face["probabilities"]) == list(CLASS_NAMES)
    assert face["label"] in CLASS_NAMES and isinstance(face["track_id"], int) and len(face["box"]) == 4
    assert count_frames(out) == N_FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "faces.jsonl"]  # no partial files


def test_annotated_frames_show_the_boxes(tmp_path, capsys, checkpoint, clip):
    video, frames, _ = clip
    out, log = tmp_path / "annotated.avi", tmp_path / "faces.jsonl"
    assert run_main(capsys, video, "--checkpoint", checkpoint, "--no-display", "--output", out, "--jsonl", log)[0] == 0
    capture = cv2.VideoCapture(str(out))
    for _ in range(2):
        ok, annotated = capture.read()
    capture.release()
    x, y, w, h = read_jsonl(log)[1]["faces"][0]["box"]
    changed = np.abs(annotated.astype(int) - frames[1].astype(int)).sum(axis=2) > 60
    assert changed[y : y + h, x - 1 : x + 2].mean() > 0.8  # the box's left edge is drawn
    assert not changed[440:, 300:340].any()  # background far from faces untouched


def test_window_quits_on_q(tmp_path, capsys, monkeypatch, checkpoint, clip):
    keys = iter([-1, -1, ord("q")])
    shown = []
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(image.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    log = tmp_path / "faces.jsonl"
    assert run_main(capsys, clip[0], "--checkpoint", checkpoint, "--jsonl", log)[0] == 0
    assert shown == [(480, 640, 3)] * 3
    assert len(read_jsonl(log)) == 3


def test_image_file_and_folder_sources(tmp_path, capsys, checkpoint, clip):
    _, frames, boxes = clip
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "b_faces.png"), frames[3])
    cv2.imwrite(str(folder / "a_empty.jpg"), frames[0])
    cv2.imwrite(str(folder / "c_small.jpg"), cv2.resize(frames[3], (320, 240)))
    (folder / "notes.txt").write_text("not an image")
    log, out = tmp_path / "faces.jsonl", tmp_path / "slides.mp4"
    status, _, _ = run_main(capsys, folder, "--checkpoint", checkpoint, "--no-display", "--jsonl", log, "--output", out)
    assert status == 0
    records = read_jsonl(log)
    assert [r["image"] for r in records] == ["a_empty.jpg", "b_faces.png", "c_small.jpg"]
    assert [r["timestamp"] for r in records] == [None] * 3
    assert len(records[0]["faces"]) == 0 and len(records[1]["faces"]) == len(boxes[3])
    assert all(face["track_id"] is None for r in records for face in r["faces"])  # unrelated photos
    assert count_frames(out) == 3  # the smaller image is resized into the video, not dropped

    single = tmp_path / "one.jsonl"
    assert run_main(capsys, folder / "b_faces.png", "--checkpoint", checkpoint, "--no-display", "--jsonl", single)[0] == 0
    assert read_jsonl(single)[0]["faces"] == records[1]["faces"]


def test_image_sequence_is_read_as_a_video(tmp_path, capsys, checkpoint, clip):
    _, frames, boxes = clip
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.png"), frame)
    log = tmp_path / "faces.jsonl"
    assert run_main(capsys, tmp_path / "frame_%03d.png", "--checkpoint", checkpoint, "--no-display", "--jsonl", log)[0] == 0
    records = read_jsonl(log)
    assert [len(r["faces"]) for r in records] == [len(b) for b in boxes]
    assert {face["track_id"] for face in records[1]["faces"]} == {face["track_id"] for face in records[6]["faces"]}


def test_yunet_detector_option(tmp_path, capsys, checkpoint):
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[192:256, 256:320] = 255  # what the stand-in YuNet model takes for a face
    cv2.imwrite(str(tmp_path / "square.png"), image)
    model, log = write_fake_yunet(tmp_path / "yunet.onnx"), tmp_path / "faces.jsonl"
    argv = [tmp_path / "square.png", "--checkpoint", checkpoint, "--no-display", "--jsonl", log]
    yunet = ["--detector", "yunet", "--detector-model", model, "--detect-scale", "0.5"]
    # --verifier-probability 0: the stand-in's white square is no face, and the face verifier says so.
    assert run_main(capsys, *argv, *yunet, "--verifier-probability", "0")[0] == 0
    assert [face["box"] for face in read_jsonl(log)[0]["faces"]] == [[192, 128, 128, 128]]
    assert run_main(capsys, *argv, *yunet)[0] == 0
    assert read_jsonl(log)[0]["faces"] == []


def test_stream_that_drops_midway_leaves_complete_outputs(tmp_path, capsys, checkpoint):
    frames, _ = compose_frames(n_frames=30, n_faces=1, empty=())
    source = tmp_path / "broken.avi"
    write_video(source, frames, fps=FPS)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])  # the stream ends mid-way, index and all
    out, log = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    status, _, _ = run_main(capsys, source, "--checkpoint", checkpoint, "--no-display", "--output", out, "--jsonl", log)
    assert status == 0
    lines = len(read_jsonl(log))
    assert 5 < lines < 30
    assert count_frames(out) == lines


def photo_folder(folder, frames, corrupt: bool = True):
    """Frames 1-3 of the clip as 1.png, 2.png, 3.png, and (``corrupt``) a PNG cut after its header
    between them: 2_cut.png."""
    folder.mkdir()
    for i in (1, 2, 3):
        cv2.imwrite(str(folder / f"{i}.png"), frames[i])
    if corrupt:
        (folder / "2_cut.png").write_bytes((folder / "2.png").read_bytes()[:200])
    return folder


def test_unreadable_image_in_a_folder_is_named_and_skipped(tmp_path, capsys, checkpoint, clip):
    _, frames, boxes = clip
    folder = photo_folder(tmp_path / "photos", frames)
    out, log, table = tmp_path / "out.mp4", tmp_path / "out.jsonl", tmp_path / "faces.csv"
    status, stdout, err = run_main(capsys, folder, "--checkpoint", checkpoint, "--no-display", "--output", out, "--jsonl", log, "--csv", table)
    assert status == 0 and stdout.startswith("3 frames")
    assert err == f"warning: skipped {folder / '2_cut.png'}: not a readable image\n"  # and no progress bar: not a terminal
    assert [r["image"] for r in read_jsonl(log)] == ["1.png", "2.png", "3.png"]
    assert count_frames(out) == 3
    assert [row["image"] for row in read_csv(table)] == ["1.png"] * len(boxes[1]) + ["2.png"] * len(boxes[2]) + ["3.png"] * len(boxes[3])


def test_csv_has_a_row_per_face_with_the_json_values(tmp_path, capsys, checkpoint, clip):
    _, frames, _ = clip
    folder = photo_folder(tmp_path / "photos", frames, corrupt=False)
    log, table = tmp_path / "faces.jsonl", tmp_path / "faces.csv"
    assert run_main(capsys, folder, "--checkpoint", checkpoint, "--no-display", "--jsonl", log, "--csv", table)[0] == 0
    rows = read_csv(table)
    assert list(rows[0]) == ["image", "x", "y", "width", "height", "label", *CLASS_NAMES]
    expected = [(r["image"], face) for r in read_jsonl(log) for face in r["faces"]]
    assert len(rows) == len(expected) == 6
    for row, (image, face) in zip(rows, expected):
        assert row["image"] == image and row["label"] == face["label"]
        assert [int(row[k]) for k in ("x", "y", "width", "height")] == face["box"]
        assert [float(row[name]) for name in CLASS_NAMES] == list(face["probabilities"].values())


def test_several_images_and_folders_in_one_run(tmp_path, capsys, checkpoint, clip):
    _, frames, _ = clip
    folder = photo_folder(tmp_path / "photos", frames, corrupt=False)
    single = tmp_path / "single.jpg"
    cv2.imwrite(str(single), frames[4])
    log = tmp_path / "faces.jsonl"
    assert run_main(capsys, single, folder, "--checkpoint", checkpoint, "--no-display", "--jsonl", log)[0] == 0
    names = [str(single)] + [str(folder / f"{i}.png") for i in (1, 2, 3)]
    assert [(r["frame"], r["image"]) for r in read_jsonl(log)] == list(enumerate(names))


def test_timeline_writes_a_plot_and_a_csv_per_track(tmp_path, capsys, checkpoint, clip):
    video, _, boxes = clip
    log, folder = tmp_path / "faces.jsonl", tmp_path / "timeline"
    assert run_main(capsys, video, "--checkpoint", checkpoint, "--no-display", "--jsonl", log, "--timeline", folder)[0] == 0
    seen: dict[int, list] = {}
    for record in read_jsonl(log):
        for face in record["faces"]:
            seen.setdefault(face["track_id"], []).append((record["frame"], face))
    assert len(seen) == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"track-{t}.{ext}" for t in seen for ext in ("csv", "png"))
    for track_id, moments in seen.items():
        rows = read_csv(folder / f"track-{track_id}.csv")
        assert list(rows[0]) == ["frame", "seconds", *CLASS_NAMES, "label"]
        assert [int(row["frame"]) for row in rows] == [frame for frame, _ in moments] == [i for i, b in enumerate(boxes) if b]
        assert [float(row["seconds"]) for row in rows] == pytest.approx([frame / FPS for frame, _ in moments])
        assert [row["label"] for row in rows] == [face["label"] for _, face in moments]
        assert [float(rows[0][name]) for name in CLASS_NAMES] == pytest.approx(list(moments[0][1]["probabilities"].values()), abs=1e-5)
        assert cv2.imread(str(folder / f"track-{track_id}.png")) is not None


def test_interrupt_keeps_complete_outputs(tmp_path, capsys, monkeypatch, checkpoint, clip):
    video = clip[0]
    real = ferlight.inference.recognizer.Recognizer.process_video

    def interrupted(self, source, **options):
        for i, result in enumerate(real(self, source, **options)):
            if i == 4:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(ferlight.inference.recognizer.Recognizer, "process_video", interrupted)
    out, log, timeline = tmp_path / "out.mp4", tmp_path / "out.jsonl", tmp_path / "timeline"
    status, stdout, _ = run_main(capsys, video, "--checkpoint", checkpoint, "--no-display", "--output", out, "--jsonl", log, "--timeline", timeline)
    assert status == 0 and stdout.startswith("4 frames")
    assert len(read_jsonl(log)) == 4 and count_frames(out) == 4
    assert [row["frame"] for row in read_csv(timeline / "track-1.csv")] == ["1", "2", "3"]  # frame 0 has no face


def test_max_frames(tmp_path, capsys, checkpoint, clip):
    log = tmp_path / "out.jsonl"
    assert run_main(capsys, clip[0], "--checkpoint", checkpoint, "--no-display", "--jsonl", log, "--max-frames", 3)[0] == 0
    assert len(read_jsonl(log)) == 3


def _garbage(tmp_path, name, data=b"\x00garbage" * 100):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, c: ["99", "--checkpoint", c], "cannot open camera 99"),
        (lambda t, c: [t / "missing.mp4", "--checkpoint", c], "no such file, folder or camera"),
        (lambda t, c: [_garbage(t, "clip.mp4"), "--checkpoint", c], "cannot open video"),
        (lambda t, c: [_garbage(t, "photo.png"), "--checkpoint", c], "cannot read image"),
        (lambda t, c: [(t / "empty").mkdir() or t / "empty", "--checkpoint", c], "no images"),
        (lambda t, c: [(t / "empty").mkdir() or t / "empty", t / "empty", "--checkpoint", c], "no images"),
        (lambda t, c: [_garbage(t, "a.png"), t / "missing", "--checkpoint", c], "no such file or folder"),
        (lambda t, c: ["0", "--checkpoint", c, "--max-frames", "0"], "--max-frames"),
        (lambda t, c: [_garbage(t, "a.png"), "--checkpoint", _garbage(t, "model.ckpt")], "not a ferlight checkpoint"),
        (lambda t, c: ["0", "--checkpoint", c, "--run-id", "abc"], "not both"),
        (lambda t, c: ["0", "--checkpoint", c, "--smoothing", "1.5"], "smoothing"),
        (lambda t, c: ["0", "--checkpoint", c, "--torch-threads", "0"], "--torch-threads"),
        (lambda t, c: ["0", "--checkpoint", c, "--detector", "yunet"], "--detector-model"),
        (lambda t, c: ["0", "--checkpoint", c, "--detect-every", "often"], "detect_every"),
        (lambda t, c: ["0", "--checkpoint", c, "--detector", "dlib"], "invalid choice"),
        (lambda t, c: ["0", "--checkpoint", c, "--fps", "30"], "unrecognized arguments: --fps"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, checkpoint, make_args, message):
    status, _, err = run_main(capsys, *make_args(tmp_path, checkpoint), "--no-display")
    assert status == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, video: [_garbage(t, "a.png"), _garbage(t, "b.jpg")], "none of the 2 images could be read"),
        (lambda t, video: [t / "photo.png", "--timeline", t / "timeline"], "--timeline is for a video"),
        (lambda t, video: [video, "--csv", t / "faces.csv"], "--csv is for images"),
    ],
)
def test_bad_input_leaves_no_output(tmp_path, capsys, checkpoint, clip, make_args, message):
    video, frames, _ = clip
    cv2.imwrite(str(tmp_path / "photo.png"), frames[3])
    argv = [*make_args(tmp_path, video), "--checkpoint", checkpoint, "--no-display", "--jsonl", tmp_path / "faces.jsonl"]
    before = set(tmp_path.iterdir())
    status, _, err = run_main(capsys, *argv)
    assert status == 2 and err.splitlines()[-1].startswith("error: ") and message in err, err
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "output, message",
    [("missing/out.mp4", "does not exist"), ("out.gif", "use one of"), ("missing/out.jsonl", "does not exist")],
)
def test_bad_output_paths(tmp_path, capsys, checkpoint, clip, output, message):
    option = "--jsonl" if output.endswith(".jsonl") else "--output"
    status, _, err = run_main(capsys, clip[0], "--checkpoint", checkpoint, "--no-display", option, tmp_path / output)
    assert status == 2 and message in err


def test_missing_default_model(tmp_path, capsys, monkeypatch, clip):
    monkeypatch.setattr(ferlight.inference.checkpoint, "DEFAULT_WEIGHTS", tmp_path / "default.pt")
    status, _, err = run_main(capsys, clip[0], "--no-display")
    assert status == 2 and "default model" in err and "--checkpoint" in err


def test_window_without_display_is_refused(capsys, monkeypatch, checkpoint, clip):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    status, _, err = run_main(capsys, clip[0], "--checkpoint", checkpoint)
    assert status == 2 and "--no-display" in err


def test_module_entry_point_skips_in_a_folder_and_refuses_alone_in_one_line(tmp_path, checkpoint, clip, run_command):
    """What a user sees, output piped (not a terminal): the skipped file's line and no progress bar;
    the same file given alone, one error line, exit status 2 and no output."""
    folder = photo_folder(tmp_path / "photos", clip[1])
    result = run_command("live", folder, "--checkpoint", checkpoint, "--no-display", "--csv", tmp_path / "faces.csv", cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("3 frames (3 with faces")
    assert result.stderr == f"warning: skipped {folder / '2_cut.png'}: not a readable image\n"
    assert len(read_csv(tmp_path / "faces.csv")) == 6
    cut = folder / "2_cut.png"
    result = run_command("live", cut, "--checkpoint", checkpoint, "--no-display", "--csv", tmp_path / "cut.csv", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stderr == f"error: cannot read image {cut}: not a readable image\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.csv", "photos"]


@pytest.mark.slow
def test_module_entry_point_reports_bad_input_in_one_line(tmp_path, checkpoint, run_command):
    result = run_command("live", tmp_path / "nowhere.mp4", "--checkpoint", checkpoint, "--no-display", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"error: no such file, folder or camera: {tmp_path / 'nowhere.mp4'}\n"


def test_real_face_clip_gives_one_record_and_one_video_frame_per_input_frame(tmp_path, capsys, checkpoint):
    face = FacePath(photo_face("hopper", 120, 0.5), (50.0, 50.0), (8.0, 3.0), (0.0, 0.0), (500.0, 300.0), first=3, last=14)
    spec = ClipSpec("real", background("gravel"), [face], n_frames=18, jpeg=50)
    video = write_clip(tmp_path, spec)
    out, log = tmp_path / "annotated.mp4", tmp_path / "faces.jsonl"
    assert run_main(capsys, video, "--checkpoint", checkpoint, "--no-display", "--output", out, "--jsonl", log)[0] == 0
    records = read_jsonl(log)
    assert [r["frame"] for r in records] == list(range(18))
    assert [len(r["faces"]) for r in records] == [0] * 3 + [1] * 12 + [0] * 3
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 18
    capture.release()
