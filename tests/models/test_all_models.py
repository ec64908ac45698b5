"""Properties every registered architecture shares: shapes, gradients, eval mode, memory formats,
bf16, JSON options, dropout-free weight layout; and export through ONNX and torch.compile.

The small models run in the fast tier; the big ones (seconds each on a CPU) in the slow tier.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ferlight.models import create_model, list_models, model_options

FAST_MODELS = {"fervgg_small", "resnet10", "vgg11"}
ALL_MODELS = [pytest.param(name, marks=() if name in FAST_MODELS else pytest.mark.slow) for name in list_models()]
BATCH = 2  # the faces fixture's default batch
CROP_SIZES = (40, 44, 48)


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_shape_and_finite_for_48_px_faces_and_crops(name, faces):
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        for size in CROP_SIZES:
            logits = model(faces(size))
            assert logits.shape == (BATCH, 5), size
            assert logits.dtype == torch.float32
            assert torch.isfinite(logits).all(), size


@pytest.mark.parametrize("name", ALL_MODELS)
def test_backward_reaches_the_first_convolution(name, faces):
    model = create_model(name).train()
    loss = nn.functional.cross_entropy(model(faces()), torch.tensor([0, 3]))
    loss.backward()
    grad = first_conv(model).weight.grad
    assert grad is not None
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_eval_mode_is_deterministic_and_per_sample(name, faces):
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
def test_channels_last_gives_the_same_output(name, faces):
    model = create_model(name).eval()
    x = faces()
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_bf16_autocast_on_cpu_runs(name, faces):
    model = create_model(name).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(faces())
    assert logits.dtype == torch.bfloat16, "autocast should run the classifier in bf16"
    assert logits.shape == (BATCH, 7)
    assert torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_options_are_json_and_rebuild_the_same_model(name, n_params):
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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fervgg", "attention"])
def test_onnx_export_matches_torch(name, faces, tmp_path):
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


@pytest.mark.parametrize("name", ["fervgg_small", pytest.param("attention", marks=pytest.mark.slow)])
def test_torch_compile_traces_the_whole_model(name, faces):
    """fullgraph=True fails on any graph break; aot_eager checks tracing without the C++ compiler."""
    model = create_model(name).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = faces()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torch_compile_inductor_on_a_small_model(faces):
    model = create_model("fervgg_small").eval()
    compiled = torch.compile(model)
    x = faces()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
