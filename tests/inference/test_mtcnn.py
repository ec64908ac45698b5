"""MTCNN: the shipped weights load into ferlight's networks, the cascade keeps one box per face and
honours the size range it is asked for."""

import numpy as np
import torch

from ferlight.inference.mtcnn import RESCUE, RESCUE_AT_MOST, WEIGHTS, MtcnnFaces, PNet, _crops, _nms, for_grey, onet, rnet
from ferlight.testing.live_clips import PHOTO_FACES, photo


def test_networks_have_the_published_shapes_and_load_the_shipped_weights():
    state = torch.load(WEIGHTS, weights_only=True)
    for name, net, size in (("pnet", PNet(), 12), ("rnet", rnet(), 24), ("onet", onet(), 48)):
        net.load_state_dict(state[name])
        probability, offsets = net(torch.zeros(2, 3, size, size))
        assert probability.shape[0] == 2 and offsets.shape[:2] == (2, 4)
        assert ((0 <= probability) & (probability <= 1)).all()


def test_nms_keeps_the_best_of_overlapping_boxes_and_separate_ones():
    boxes = np.array([[0, 0, 10, 10, 0.8], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.7], [2, 2, 6, 6, 0.95]])
    assert sorted(_nms(boxes, 0.5)) == [1, 2, 3]  # the small box inside overlaps little by IoU
    assert sorted(_nms(boxes, 0.7, overlap_of_smaller=True)) == [2, 3]  # ... but wholly by the smaller box


def test_crops_are_zero_outside_the_image():
    image = np.full((20, 20, 3), 200, dtype=np.uint8)
    crop = _crops(image, np.array([[-10.0, 0, 10, 20, 1]]), 4)[0]
    assert (crop[:, :2] == 0).all() and (crop[:, 2:] == 200).all()


def test_one_box_per_face_within_the_size_range_asked_for():
    rgb = photo("astronaut")[:, :, ::-1]
    faces = MtcnnFaces()
    found = faces(rgb, min_size=40)
    assert len(found) == 1 and found[0, 4] > 0.99
    x, y, w, h = PHOTO_FACES["astronaut"]
    centre = (found[0, :2] + found[0, 2:4]) / 2
    assert np.abs(centre - (x + w / 2, y + h / 2)).max() < 0.15 * w
    assert len(faces(rgb, min_size=40, max_size=50)) == 0  # the face is about 100 px


def test_a_grey_image_gives_the_boxes_of_its_three_channel_copy():
    faces = MtcnnFaces()
    grey = photo("astronaut")[:, :, 1].copy()
    for net, size in zip((faces.pnet, faces.rnet, faces.onet), (12, 24, 48)):
        x = torch.rand(3, 1, size, size) * 2 - 1
        assert torch.allclose(for_grey(net)(x)[0], net(x.expand(-1, 3, -1, -1))[0], atol=1e-5)
    on_grey, on_rgb = faces(grey, min_size=40), faces(np.repeat(grey[:, :, None], 3, axis=2), min_size=40)
    assert len(on_grey) == len(on_rgb) >= 1
    assert np.allclose(on_grey, on_rgb, atol=0.5)


def test_candidates_caps_the_boxes_that_reach_the_last_stage():
    faces = MtcnnFaces()
    grey = photo("astronaut")[:, :, 1]
    two = np.ascontiguousarray(np.concatenate([grey, grey], axis=1))
    assert len(faces(two, min_size=40)) == 2
    (best,) = faces(two, min_size=40, candidates=1)
    assert best[4] > 0.99


def test_a_still_search_keeps_a_face_that_r_net_doubts_when_o_net_is_sure(monkeypatch):
    faces = MtcnnFaces()
    grey = photo("astronaut")[:, :, 1].copy()
    rnet = faces.grey_nets[1]

    def doubting(x):  # R-Net scores every candidate 0.3: below its 0.7, above the rescue's 0.1
        probability, offsets = rnet(x)
        return torch.full_like(probability, 0.3), offsets

    monkeypatch.setattr(faces, "grey_nets", (faces.grey_nets[0], doubting, faces.grey_nets[2]))
    assert len(faces(grey, min_size=40)) == 0
    (face,) = faces(grey, min_size=40, still=True)
    assert face[4] >= RESCUE[1]
    x, y, w, h = PHOTO_FACES["astronaut"]
    assert np.abs((face[:2] + face[2:4]) / 2 - (x + w / 2, y + h / 2)).max() < 0.15 * w


def test_a_still_search_sends_only_the_most_probable_doubted_boxes_on_to_o_net(monkeypatch):
    faces = MtcnnFaces()
    grey = photo("astronaut")[:, :, 1].copy()
    rnet, onet_net = faces.grey_nets[1], faces.grey_nets[2]
    seen = []

    def doubting(x):  # R-Net doubts every candidate, each a little less than the one before
        probability, offsets = rnet(x)
        return torch.linspace(0.6, 0.06, len(probability)), offsets

    def counting(x):
        seen.append(len(x))
        return onet_net(x)

    monkeypatch.setattr(faces, "grey_nets", (faces.grey_nets[0], doubting, counting))
    faces(grey, min_size=20, still=True)
    assert seen == [RESCUE_AT_MOST]
