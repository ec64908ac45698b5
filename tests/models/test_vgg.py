"""vgg: the paper's VGG11 and VGG16, their parameter counts, block layout and dropout placement."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferlight.models import create_model


@pytest.mark.parametrize(("name", "expected"), [("vgg11", 14_480_647), ("vgg16", 19_974_855)])
def test_vgg_parameter_counts_match_the_paper(name, expected, n_params):
    assert n_params(create_model(name)) == expected


@pytest.mark.parametrize("name", ["vgg11", "vgg16"])
def test_vgg_is_five_blocks_of_3x3_convs_then_dense_2048(name):
    model = create_model(name)
    assert len(model.features) == 5
    for block in model.features:
        assert isinstance(block[-1], nn.MaxPool2d)
        assert all(m.kernel_size == (3, 3) for m in block if isinstance(m, nn.Conv2d))
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 2048), (2048, 2048), (2048, 7)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in create_model(name, batch_norm=True).modules()) == sum(
        isinstance(m, nn.Conv2d) for m in model.modules()
    )


@pytest.mark.parametrize("name", ["vgg11", "vgg16"])
@pytest.mark.parametrize(
    ("placement", "blocks_with_dropout"), [("none", []), ("every", [0, 1, 2, 3, 4]), ("alternate", [0, 2, 4])]
)
def test_dropout_placement(name, placement, blocks_with_dropout):
    model = create_model(name, dropout_placement=placement, dropout=0.3)
    ends_in_dropout = [i for i, block in enumerate(model.features) if isinstance(block[-1], nn.Dropout)]
    assert ends_in_dropout == blocks_with_dropout
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == len(blocks_with_dropout), "dropout only at the end of the chosen blocks"
    assert all(m.p == 0.3 for m in dropouts)


def test_dropout_is_active_in_training_only(faces):
    model = create_model("vgg11", dropout_placement="every")
    x = faces()
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
