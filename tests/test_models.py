"""The model zoo: every registered architecture, the paper's exact designs, options and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from ferlight.errors import ConfigError
from ferlight.models import create_model, list_models, model_options, register_model

ALL_MODELS = list_models()
BATCH = 2
CROP_SIZES = (40, 44, 48)


def faces(size: int = 48, batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    """A batch of normalised-looking grey faces (random, reproducible)."""
    return torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(seed))


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- every model ---------------------------------------------------------------------------------


def test_registry_lists_the_paper_models_and_the_recommended_one():
    assert ALL_MODELS == sorted(ALL_MODELS)
    paper = {"vgg11", "vgg16", "resnet10", "resnet18", "resnet50", "attention"}
    assert paper | {"fervgg", "fervgg_small"} <= set(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_shape_and_finite_for_48_px_faces_and_crops(name):
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        for size in CROP_SIZES:
            logits = model(faces(size))
            assert logits.shape == (BATCH, 5), size
            assert logits.dtype == torch.float32
            assert torch.isfinite(logits).all(), size


@pytest.mark.parametrize("name", ALL_MODELS)
def test_backward_reaches_the_first_convolution(name):
    model = create_model(name).train()
    loss = nn.functional.cross_entropy(model(faces()), torch.tensor([0, 3]))
    loss.backward()
    grad = first_conv(model).weight.grad
    assert grad is not None
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_eval_mode_is_deterministic_and_per_sample(name):
    model = create_model(name).eval()
    x = faces(batch=3)
    with torch.no_grad():
        first, second = model(x), model(x)
        alone = model(x[1:2])
    assert torch.equal(first, second)
    # eval mode must not mix samples (batch norm uses running statistics)
    torch.testing.assert_close(alone, first[1:2], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(first[0], first[1]), "different faces should give different logits"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_channels_last_gives_the_same_output(name):
    model = create_model(name).eval()
    x = faces()
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_bf16_autocast_on_cpu_runs(name):
    model = create_model(name).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(faces())
    assert logits.dtype == torch.bfloat16, "autocast should run the classifier in bf16"
    assert logits.shape == (BATCH, 7)
    assert torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_options_are_json_and_rebuild_the_same_model(name):
    """Options travel through checkpoints and MLflow as JSON: defaults must survive the round trip."""
    options = json.loads(json.dumps(model_options(name)))
    assert options == model_options(name)
    rebuilt = create_model(name, 7, **options)
    assert n_params(rebuilt) == n_params(create_model(name))
    assert rebuilt.state_dict().keys() == create_model(name).state_dict().keys()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_weights_load_whatever_the_dropout(name):
    """Inference may rebuild a model with another dropout: the state-dict layout must not change."""
    trained = create_model(name)
    create_model(name, dropout=0.0).load_state_dict(trained.state_dict())


@pytest.mark.parametrize("name", ["fervgg", "attention"])
def test_onnx_export_matches_torch(name, tmp_path):
    """Dynamo export with a dynamic batch; checked by onnx.checker and run by onnx's reference
    evaluator (and onnxruntime when installed). ``fervgg`` pools 3x3 to 2x2, which the legacy
    exporter cannot export; ``attention`` has the spatial attention layer."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from onnx.reference import ReferenceEvaluator

    model = create_model(name).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        (faces(),),
        str(path),
        dynamo=True,
        input_names=["faces"],
        output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    onnx.checker.check_model(str(path))
    x = faces(batch=3, seed=1)  # another batch size than the one exported
    with torch.no_grad():
        expected = model(x).numpy()
    got = ReferenceEvaluator(str(path)).run(None, {"faces": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"faces": x.numpy()})[0], expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["fervgg_small", "attention"])
def test_torch_compile_traces_the_whole_model(name):
    """fullgraph=True fails on any graph break; aot_eager checks tracing without the C++ compiler."""
    model = create_model(name).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = faces()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torch_compile_inductor_on_a_small_model():
    model = create_model("fervgg_small").eval()
    compiled = torch.compile(model)
    x = faces()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_models_package_imports_torch_only():
    code = (
        "import sys, ferlight.models; "
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'mlflow', 'cv2', 'optuna') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the paper's designs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [("vgg11", 14_480_647), ("vgg16", 19_974_855)])
def test_vgg_parameter_counts_match_the_paper(name, expected):
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


def test_dropout_is_active_in_training_only():
    model = create_model("vgg11", dropout_placement="every")
    x = faces()
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_resnet_depths():
    def blocks(name):
        return [len(stage) for stage in create_model(name).stages]

    assert blocks("resnet10") == [2, 2]
    assert blocks("resnet18") == [2, 2, 2, 2]
    assert blocks("resnet50") == [3, 4, 6, 3]
    assert create_model("resnet50").head[-1].in_features == 2048


def test_resnet_stem_option_sets_the_feature_map_size():
    x = faces()
    for stem, size in (("pooled", 3), ("cifar", 6)):
        model = create_model("resnet18", stem=stem).eval()
        with torch.no_grad():
            assert model.stages(model.stem(x)).shape[-2:] == (size, size), stem


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


@pytest.mark.parametrize(("size", "map_size"), [(48, 12), (44, 11), (40, 10)])
def test_attention_map_shape_range_and_logits(size, map_size):
    model = create_model("attention").eval()
    x = faces(size, batch=3)
    with torch.no_grad():
        logits, weights = model.forward_with_attention(x)
        plain = model(x)
    assert weights.shape == (3, 1, map_size, map_size)
    assert weights.min() >= 0 and weights.max() <= 1
    torch.testing.assert_close(logits, plain)


def test_attention_map_changes_with_the_input():
    model = create_model("attention").eval()
    with torch.no_grad():
        _, weights = model.forward_with_attention(torch.cat([faces(seed=1), faces(seed=2)]))
        _, shifted = model.forward_with_attention(faces(seed=1).roll(8, dims=-1))
    assert not torch.allclose(weights[:2], weights[2:])
    assert not torch.allclose(shifted, weights[:2])
    assert weights[0].std() > 0, "the map should weight regions differently"


def test_attention_ablation_is_the_same_network_without_the_layer():
    full = create_model("attention")
    ablation = create_model("attention", attention=False).eval()
    assert not hasattr(ablation, "forward_with_attention")
    assert not any(isinstance(m, type(full.attention)) for m in ablation.modules())
    assert ablation(faces()).shape == (BATCH, 7)
    without_layer = {k: v for k, v in full.state_dict().items() if not k.startswith("attention.")}
    ablation.load_state_dict(without_layer)  # strict: every other weight has the same name and shape


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


def test_fervgg_small_is_the_reference_cpu_net():
    model = create_model("fervgg_small")
    widths = [[m.out_channels for m in s if isinstance(m, nn.Conv2d)] for s in model.features]
    assert widths == [[32, 32], [64, 64], [128, 128], [256, 256]]
    assert round(n_params(model) / 1e6, 2) == 1.17
    assert [type(m) for m in model.head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Linear]
    assert model.head[2].p == 0.3
    wider = create_model("fervgg_small", width=48)
    assert [m.out_channels for m in wider.features[-1] if isinstance(m, nn.Conv2d)] == [384, 384]


# --- errors ------------------------------------------------------------------------------------------


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ConfigError) as err:
        create_model("vgg19")
    message = str(err.value)
    assert "'vgg19'" in message
    assert all(name in message for name in ALL_MODELS)


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match="'batchnorm'.*batch_norm"):
        create_model("vgg11", batchnorm=True)
    with pytest.raises(ConfigError, match="'attention'"):
        create_model("resnet18", attention=True)


@pytest.mark.parametrize(
    ("name", "options", "named"),
    [
        ("vgg11", {"dropout_placement": "sometimes"}, "dropout_placement"),
        ("vgg16", {"dropout": 1.5}, "dropout"),
        ("vgg11", {"batch_norm": "no"}, "batch_norm"),
        ("resnet18", {"stem": "imagenet"}, "stem"),
        ("resnet50", {"dropout": -0.1}, "dropout"),
        ("attention", {"kernel_sizes": [3, 5, 7]}, "kernel_sizes"),
        ("attention", {"kernel_sizes": [3, 3, 4, 5, 7]}, "kernel_sizes"),
        ("fervgg", {"width": 0}, "width"),
        ("fervgg", {"hidden": 2.5}, "hidden"),
        ("fervgg_small", {"dropout": "0.3"}, "dropout"),
    ],
)
def test_bad_option_values_are_config_errors(name, options, named):
    with pytest.raises(ConfigError, match=named):
        create_model(name, **options)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("fervgg_small", num_classes=num_classes)


def test_a_name_cannot_be_registered_twice():
    def vgg11(num_classes: int = 7) -> nn.Module:
        return nn.Linear(1, num_classes)

    with pytest.raises(ValueError, match="vgg11"):
        register_model(vgg11)
    assert list_models() == ALL_MODELS
