"""The live benchmark's real-face clips (ferlight.testing.live_clips): faces where their truth
says, partly out of view, every clip kind, clip and truth on disk."""

from __future__ import annotations

import cv2
import numpy as np

from ferlight.testing.live_clips import (
    CLIP_KINDS,
    ClipSpec,
    CLEAN_CLIPS,
    FacePath,
    background,
    make_clean_clips,
    fer_face,
    photo,
    photo_face,
    random_clip,
    read_truth,
    render,
    write_clip,
)


def still_face_clip(n_frames: int = 6) -> ClipSpec:
    face = photo_face("astronaut", 100, 0.4)
    path = FacePath(face, (100.0, 80.0), (10.0, 0.0), (0.0, 0.0), (640.0, 480.0), last=n_frames - 1)
    return ClipSpec("moving", background("coffee"), [path], n_frames=n_frames)


def test_rendered_face_is_where_its_truth_says():
    spec = still_face_clip()
    frames, truth = render(spec)
    assert len(frames) == len(truth) == spec.n_frames
    for t, (frame, faces) in enumerate(zip(frames, truth)):
        assert frame.shape == (480, 640, 3)
        (face,) = faces
        x, y, w, h = face["box"]
        assert face["visible"] == 1 and face["label"] is None and face["source"] == "astronaut"
        assert (x, w) == (100 + 10 * t + spec.faces[0].face.box[0], 100)
        # The pasted patch is in the frame at the truth box (undegraded clip: pixel for pixel).
        px, py = spec.faces[0].corner(t)
        patch = spec.faces[0].face.patch
        np.testing.assert_array_equal(frame[py : py + patch.shape[0], px : px + patch.shape[1]], patch)


def test_faces_partly_out_of_the_frame_are_marked_and_gone_faces_left_out():
    face = fer_face(np.full((48, 48), 128, np.uint8), 3, 100)
    path = FacePath(face, (-150.0, 0.0), (50.0, 0.0), (-150.0, 0.0), (600.0, 0.0))
    spec = ClipSpec("enter", background("coffee"), [path], n_frames=5)
    _, truth = render(spec)
    assert truth[0] == []  # wholly outside
    assert 0 < truth[2][0]["visible"] < 1  # x = -50: half in view
    assert truth[3][0]["visible"] == 1 and truth[3][0]["label"] == 3


def test_every_clip_kind_renders_with_photographs_alone():
    rng = np.random.default_rng(0)
    image = photo("hopper")
    for kind in CLIP_KINDS:
        spec = random_clip(kind, "heldout", rng, [], image)
        spec.n_frames = 3
        frames, truth = render(spec)
        assert len(frames) == 3
        assert len(spec.faces) == kind[1]


def test_clip_and_truth_written_side_by_side(tmp_path):
    video = write_clip(tmp_path, still_face_clip(4))
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 4
    truth = read_truth(video)
    assert (truth["width"], truth["height"], len(truth["frames"])) == (640, 480, 4)


def test_the_clean_clips_hold_two_whole_faces_in_every_frame_on_a_plain_wall(tmp_path):
    videos = make_clean_clips(tmp_path)
    assert [v.name for v in videos] == [f"two-clean-{i}.mp4" for i in range(len(CLEAN_CLIPS))]
    for video in videos:
        truth = read_truth(video)["frames"]
        assert len(truth) == 90
        for faces in truth:
            assert len(faces) == 2 and all(face["visible"] == 1 for face in faces)
            left, right = sorted(faces, key=lambda face: face["box"][0])
            assert left["box"][0] + left["box"][2] <= 320 <= right["box"][0]  # one face in each half
