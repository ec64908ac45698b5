"""The registry: the architectures it lists, the options it accepts and the errors it names; the
package needs torch alone."""

from __future__ import annotations

import subprocess
import sys

import pytest
from torch import nn

from ferlight.errors import ConfigError
from ferlight.models import create_model, list_models, register_model

ALL_MODELS = list_models()


def test_registry_lists_the_paper_models_and_the_recommended_one():
    assert ALL_MODELS == sorted(ALL_MODELS)
    paper = {"vgg11", "vgg16", "resnet10", "resnet18", "resnet50", "attention"}
    assert paper | {"fervgg", "fervgg_small"} <= set(ALL_MODELS)


def test_models_package_imports_torch_only():
    code = (
        "import sys, ferlight.models; "
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'mlflow', 'cv2', 'optuna') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


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
