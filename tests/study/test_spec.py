"""Study files: the shipped grid and search, enqueued grid files, and the one rule for model options
(a model option applies only to the architectures that have it)."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import yaml

from ferlight.errors import ConfigError
from ferlight.study.spec import applies, build_pruner, load_study_spec, setting_value
from ferlight.training.config import FitConfig

REPO = Path(__file__).resolve().parents[2]

PAPER_POINTS = (
    [{"arch": a, "optimizer": "adam", "batch_size": b, "dropout_placement": "none"}
     for a in ("vgg11", "vgg16") for b in (32, 64, 128)]
    + [{"arch": "vgg11", "optimizer": "adam", "batch_size": 64, "dropout_placement": p} for p in ("every", "alternate")]
    + [{"arch": "resnet10", "optimizer": o, "batch_size": b} for o in ("adam", "rmsprop") for b in (32, 64, 128)]
    + [{"arch": a, "optimizer": o, "batch_size": 32} for a in ("resnet18", "resnet50") for o in ("adam", "rmsprop")]
    + [{"arch": "attention", "optimizer": "adam", "batch_size": 64}]
)


def write_study(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_paper_grid_holds_exactly_the_papers_points():
    spec = load_study_spec(REPO / "sweeps" / "paper_grid.yaml")
    assert spec.sampler == "grid" and spec.pruner == "none"
    assert sorted(map(repr, spec.points)) == sorted(map(repr, PAPER_POINTS))
    assert len(spec.points) == 19


def test_the_extension_holds_the_resnet_points_the_paper_did_not_run():
    spec = load_study_spec(REPO / "sweeps" / "paper_grid_extension.yaml")
    assert sorted(map(repr, spec.points)) == sorted(map(repr, (
        {"arch": a, "optimizer": o, "batch_size": b}
        for a in ("resnet18", "resnet50") for o in ("adam", "rmsprop") for b in (64, 128))))


def test_search_file_searches_the_issues_space_from_the_paper_grid():
    spec = load_study_spec(REPO / "sweeps" / "search.yaml")
    assert spec.sampler == "tpe" and spec.pruner != "none"
    space = spec.space
    searched = {"optimizer", "lr", "batch_size", "dropout_placement", "dropout", "weight_decay", "label_smoothing"}
    assert searched <= set(space)
    assert set(space["optimizer"].choices) == {"adam", "rmsprop", "sgd", "adamw"}
    assert space["lr"].log and space["lr"].low < 1e-3 < space["lr"].high
    assert min(space["batch_size"].choices) == 32 and max(space["batch_size"].choices) == 256
    assert set(space["dropout_placement"].choices) == {"none", "every", "alternate"}
    assert sorted(map(repr, spec.enqueue)) == sorted(map(repr, PAPER_POINTS))


def test_enqueued_grid_file_keeps_only_points_inside_the_space(tmp_path):
    write_study(tmp_path / "grid.yaml", {"grid": [{"arch": ["vgg11", "resnet18"], "batch_size": [32, 512]}]})
    spec = load_study_spec(write_study(tmp_path / "s.yaml", {
        "sampler": "random", "enqueue": "grid.yaml",
        "space": {"arch": {"choices": ["vgg11", "resnet18"]}, "batch_size": {"low": 16, "high": 256}},
    }))
    assert spec.enqueue == ({"arch": "vgg11", "batch_size": 32}, {"arch": "resnet18", "batch_size": 32})


def test_a_model_option_applies_only_to_the_architectures_that_have_it():
    assert applies("dropout_placement", "vgg11") and not applies("dropout_placement", "resnet18")
    assert applies("dropout", "resnet18") and applies("lr", "resnet18")  # every FitConfig option applies


def test_setting_value_is_what_the_config_trains_with():
    cfg = FitConfig(arch="vgg11", lr=0.01, model_options={"dropout": 0.3})
    assert (setting_value(cfg, "lr"), setting_value(cfg, "dropout")) == (0.01, 0.3)
    assert setting_value(cfg, "dropout_placement") is not None  # unset: the model's default
    assert setting_value(FitConfig(arch="resnet18"), "dropout_placement") is None  # ResNets have no placement


@pytest.mark.parametrize("doc,key", [
    ({"sampler": "tpe", "space": {"arch": {"choices": ["resnet18"]}, "dropout_placement": {"choices": ["every"]}}},
     "space.dropout_placement"),
    ({"sampler": "tpe", "space": {"arch": {"choices": ["vgg11", "resnet18"]}, "dropout_placement": {"choices": ["every"]}},
      "enqueue": [{"arch": "resnet18", "dropout_placement": "every"}]}, "enqueue[0].dropout_placement"),
    ({"fixed": {"arch": "resnet18"}, "grid": [{"dropout_placement": ["every"]}]}, "grid[0].dropout_placement"),
])
def test_a_point_or_space_with_an_option_its_architecture_lacks_is_refused(tmp_path, doc, key):
    with pytest.raises(ConfigError, match=re.escape(f"s.yaml: {key}:")):
        load_study_spec(write_study(tmp_path / "s.yaml", doc))


def test_the_paper_study_prunes_below_the_median_and_at_chance():
    """Four of the grid's five VGG11 rows seed the study at 25.2% every epoch (every face "happy"):
    the median alone would prune nothing there, the threshold prunes a trial stuck at chance."""
    spec = load_study_spec(REPO / "sweeps" / "paper_study.yaml")
    pruner = build_pruner(spec)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for history in ([0.2515] * 8,) * 4 + ([0.25, 0.25, 0.34, 0.45, 0.48, 0.50, 0.53, 0.55],):
        study.add_trial(optuna.trial.create_trial(value=history[-1], intermediate_values=dict(enumerate(history))))

    def pruned_at(history) -> int | None:
        trial = study.ask()
        for step, value in enumerate(history):
            trial.report(value, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return step
        study.tell(trial, history[-1])
        return None

    assert pruned_at([0.2515] * 8) == 3  # at chance from the fourth epoch: pruned there
    assert pruned_at([0.25, 0.25, 0.40, 0.50, 0.55, 0.56, 0.57, 0.58]) is None


def test_any_pruner_needs_a_list_of_known_pruners(tmp_path):
    doc = {"sampler": "tpe", "space": {"lr": {"low": 1e-4, "high": 1e-2}}}
    for pruners in ([], [{"name": "bogus"}], [{"name": "any", "pruners": []}]):
        pruner = {"name": "any", "pruners": pruners}
        with pytest.raises(ConfigError, match=re.escape("s.yaml: pruner:")):
            load_study_spec(write_study(tmp_path / "s.yaml", {**doc, "pruner": pruner}))
