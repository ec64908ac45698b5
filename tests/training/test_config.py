"""FitConfig: the model flags fold into model_options, a trial's settings apply by one rule, and
the module's defaults are the config's."""

from __future__ import annotations

import dataclasses
import inspect

import yaml

from ferlight.options import parse_namespace
from ferlight.training import EmotionClassifier, FitConfig
from ferlight.training.config import fit_parser, to_fit_config


def parse(*argv: str) -> FitConfig:
    return to_fit_config(parse_namespace(fit_parser("fit", "test"), list(argv)))


def test_dropout_flags_become_model_options():
    cfg = parse("--arch", "vgg11", "--dropout", "0.2", "--dropout-placement", "every", "--model-options", "{batch_norm: true}")
    assert cfg.model_options == {"batch_norm": True, "dropout": 0.2, "dropout_placement": "every"}
    assert parse("--arch", "vgg11").model_options == {}  # unset flags leave the model's defaults


def test_saved_config_reads_back_as_the_same_config(tmp_path):
    cfg = parse("--arch", "vgg11", "--dropout", "0.3", "--lr", "0.01")
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    assert parse("--config", str(path)) == cfg
    assert "dropout" not in yaml.safe_load(cfg.to_yaml())  # one home: model_options


def test_settings_apply_fields_and_model_flags_by_architecture():
    base = FitConfig(model_options={"dropout_placement": "every", "width": 8})
    vgg = base.with_settings({"arch": "vgg11", "dropout": 0.1, "lr": 0.5})
    assert (vgg.lr, vgg.model_options) == (0.5, {"dropout_placement": "every", "width": 8, "dropout": 0.1})
    resnet = base.with_settings({"arch": "resnet18"})
    assert resnet.model_options == {"width": 8}  # a flag the architecture lacks is dropped, other options are not


def test_module_defaults_are_the_command_line_defaults():
    defaults = FitConfig()
    parameters = inspect.signature(EmotionClassifier).parameters
    shared = [f.name for f in dataclasses.fields(FitConfig) if f.name in parameters and f.name != "class_weights"]
    assert len(shared) >= 10
    for name in shared:
        if name != "model_options":
            assert parameters[name].default == getattr(defaults, name), name
