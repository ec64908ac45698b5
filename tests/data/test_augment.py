"""augment: BatchAugment's policies on whole batches, its exact resampling geometry and random erasing."""

from __future__ import annotations

import pytest
import torch

from ferlight.data import BatchAugment
from ferlight.data.preprocess import center_crop, normalize
from ferlight.errors import ConfigError


@pytest.mark.parametrize("crop", [40, 44, 48])
def test_batch_augment_shapes_and_policies(make_data, crop):
    x = normalize(torch.from_numpy(make_data().images[:16]))
    torch.manual_seed(0)
    strong = BatchAugment("strong", crop)(x)
    assert strong.shape == (16, 1, crop, crop) and strong.dtype == torch.float32
    assert not torch.equal(strong, center_crop(x, crop))
    assert torch.equal(BatchAugment("none", crop)(x), center_crop(x, crop))


def test_resampling_geometry(make_data):
    """The affine resampling behind the strong policy crops, flips and shifts exactly."""
    x = normalize(torch.from_numpy(make_data().images[:4]))
    augment = BatchAugment("strong", 40)
    still, no_flip, centred = torch.zeros(4), torch.zeros(4, dtype=torch.bool), torch.zeros(4, 2)
    crop = center_crop(x, 40)
    assert torch.allclose(augment.resample(x, still, no_flip, centred), crop, atol=1e-4)
    assert torch.allclose(augment.resample(x, still, ~no_flip, centred), crop.flip(-1), atol=1e-4)
    right_2_up_3 = torch.tensor([[2.0, -3.0]]).expand(4, 2)
    assert torch.allclose(augment.resample(x, still, no_flip, right_2_up_3), x[..., 1:41, 6:46], atol=1e-4)
    quarter_turn = augment.resample(x, torch.full((4,), 90.0), no_flip, centred)
    assert torch.allclose(quarter_turn, crop.rot90(1, (-2, -1)), atol=1e-4)


def test_random_erasing_zeroes_one_rectangle_in_about_half_the_faces():
    torch.manual_seed(0)
    erased = BatchAugment("strong", 40)._erase(torch.ones(1000, 1, 40, 40))
    zero = erased[:, 0] == 0
    counts = zero.sum((1, 2))
    assert 400 < (counts > 0).sum() < 600
    for mask, count in zip(zero[counts > 0], counts[counts > 0]):
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert height * width == count  # a filled rectangle
        assert 0.02 * 1600 * 0.7 <= count <= 0.2 * 1600 * 1.3  # about 2 to 20 % of the face (rounding)


def test_batch_augment_rejects_bad_options():
    with pytest.raises(ConfigError, match="unknown augmentation 'heavy'"):
        BatchAugment("heavy")
    with pytest.raises(ConfigError, match="crop_size must be between 8 and 48"):
        BatchAugment("strong", 50)
