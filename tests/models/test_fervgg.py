"""fervgg: the recommended FER-VGG (Khaireddin and Chen) and its small CPU reference net."""

from __future__ import annotations

from torch import nn

from ferlight.models import create_model


def test_fervgg_follows_khaireddin_and_chen():
    model = create_model("fervgg")
    stages = list(model.features)
    assert len(stages) == 4
    widths = [[m.out_channels for m in s if isinstance(m, nn.Conv2d)] for s in stages]
    assert widths == [[64, 64], [128, 128], [256, 256], [512, 512]]
    assert all(isinstance(s[-1], nn.MaxPool2d) for s in stages)
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 4096), (4096, 4096), (4096, 7)]
    assert [m.p for m in model.head if isinstance(m, nn.Dropout)] == [0.2, 0.2]


def test_fervgg_small_is_the_reference_cpu_net(n_params):
    model = create_model("fervgg_small")
    widths = [[m.out_channels for m in s if isinstance(m, nn.Conv2d)] for s in model.features]
    assert widths == [[32, 32], [64, 64], [128, 128], [256, 256]]
    assert round(n_params(model) / 1e6, 2) == 1.17
    assert [type(m) for m in model.head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert model.head[2].p == 0.3
    wider = create_model("fervgg_small", width=48)
    assert [m.out_channels for m in wider.features[-1] if isinstance(m, nn.Conv2d)] == [384, 384]
