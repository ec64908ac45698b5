"""resnet: the paper's ResNet depths and the stem option."""

from __future__ import annotations

import torch

from ferlight.models import create_model


def test_resnet_depths():
    def blocks(name):
        return [len(stage) for stage in create_model(name).stages]

    assert blocks("resnet10") == [2, 2]
    assert blocks("resnet18") == [2, 2, 2, 2]
    assert blocks("resnet50") == [3, 4, 6, 3]
    assert create_model("resnet50").head[-1].in_features == 2048


def test_resnet_stem_option_sets_the_feature_map_size(faces):
    x = faces()
    for stem, size in (("pooled", 3), ("cifar", 6)):
        model = create_model("resnet18", stem=stem).eval()
        with torch.no_grad():
            assert model.stages(model.stem(x)).shape[-2:] == (size, size), stem
