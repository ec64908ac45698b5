"""attention: the paper's attention network, its growing kernels, its attention map and the ablation
without the layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferlight.models import create_model

BATCH = 2  # the faces fixture's default batch


def test_attention_model_kernels_grow_and_every_conv_has_batch_norm():
    model = create_model("attention")
    blocks = list(model.early) + list(model.late)
    kernels = [[m.kernel_size[0] for m in block if isinstance(m, nn.Conv2d)] for block in blocks]
    assert kernels == [[3], [3], [5, 5], [5, 5], [7, 7]]
    for block in blocks:
        layers = list(block)
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2d):
                assert isinstance(layers[i + 1], nn.BatchNorm2d)
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [2048, 2048, 7]


@pytest.mark.parametrize(
    ("size", "map_size"), [(48, 12), pytest.param(44, 11, marks=pytest.mark.slow), pytest.param(40, 10, marks=pytest.mark.slow)]
)
def test_attention_map_shape_range_and_logits(size, map_size, faces):
    model = create_model("attention").eval()
    x = faces(size, batch=3)
    with torch.no_grad():
        logits, weights = model.forward_with_attention(x)
        plain = model(x)
    assert weights.shape == (3, 1, map_size, map_size)
    assert weights.min() >= 0 and weights.max() <= 1
    torch.testing.assert_close(logits, plain)


def test_attention_map_changes_with_the_input(faces):
    model = create_model("attention").eval()
    with torch.no_grad():
        _, weights = model.forward_with_attention(torch.cat([faces(seed=1), faces(seed=2)]))
        _, shifted = model.forward_with_attention(faces(seed=1).roll(8, dims=-1))
    assert not torch.allclose(weights[:2], weights[2:])
    assert not torch.allclose(shifted, weights[:2])
    assert weights[0].std() > 0, "the map should weight regions differently"


def test_attention_ablation_is_the_same_network_without_the_layer(faces):
    full = create_model("attention")
    ablation = create_model("attention", attention=False).eval()
    assert not hasattr(ablation, "forward_with_attention")
    assert not any(isinstance(m, type(full.attention)) for m in ablation.modules())
    assert ablation(faces()).shape == (BATCH, 7)
    without_layer = {k: v for k, v in full.state_dict().items() if not k.startswith("attention.")}
    ablation.load_state_dict(without_layer)  # strict: every other weight has the same name and shape
