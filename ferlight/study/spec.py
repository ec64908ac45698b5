"""Study files: the YAML that defines an Optuna study over ``ferlight.fit`` options, validated.

A file names a sampler and a pruner, ``fixed`` options for every trial, and either a ``grid``
(blocks of option lists, expanded here into points, since the blocks need not form one product)
or a ``space`` for TPE or random search, with ``enqueue``d points tried first. Every mistake is a
ConfigError naming the file and the key. See docs/sweeps.md for the format.
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, get_args

import optuna
import yaml
from jsonargparse import ArgumentParser
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ferlight.options import add_dataclass_arguments, option_types
from ferlight.training.config import MODEL_FLAGS, FitConfig, ModelFlags
from ferlight.errors import ConfigError
from ferlight.models import list_models, model_options

POINT = "point"  # the Optuna parameter of a grid study: the index of the point in StudySpec.points

# Set by the sweep for each trial, so not settable in a study file.
MANAGED_FIELDS = ("resume", "run_name", "register_model")  # a study registers its best trial itself
SETTABLE = tuple(name for name in option_types(FitConfig, ModelFlags) if name not in MANAGED_FIELDS)

SAMPLERS = {
    "grid": optuna.samplers.GridSampler,
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
}
PRUNERS = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}


class AnyPruner(optuna.pruners.BasePruner):
    """Prunes a trial when any of ``pruners`` would (each ``{name: NAME, option: value, ...}`` of
    :data:`PRUNERS`): Optuna's pruners judge by one rule each and cannot be combined (a study may
    want a trial worse than the median dropped, and one no better than chance too)."""

    def __init__(self, pruners: list[dict]) -> None:
        if not isinstance(pruners, list) or not pruners:
            raise ValueError("any needs a list of pruners")
        self.pruners = []
        for options in map(dict, pruners):
            name = options.pop("name", None)
            if name not in PRUNERS or name == "any":
                raise ValueError(f"unknown pruner {name!r} in any; choose from {', '.join(n for n in PRUNERS if n != 'any')}")
            self.pruners.append(PRUNERS[name](**options))

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return any(pruner.prune(study, trial) for pruner in self.pruners)


PRUNERS["any"] = AnyPruner
STUDY_KEYS = ("study_name", "sampler", "pruner", "n_trials", "fixed", "grid", "space", "enqueue")


@dataclass(frozen=True)
class StudySpec:
    """A validated study file."""

    path: Path
    name: str
    sampler: str
    sampler_options: dict
    pruner: str
    pruner_options: dict
    n_trials: Optional[int]
    fixed: dict
    points: tuple = ()  # grid studies: the expanded points, each a dict of settings
    space: dict = field(default_factory=dict)  # tpe / random: option name -> Optuna distribution
    enqueue: tuple = ()  # tpe / random: points tried first

    @property
    def searched(self) -> list[str]:
        """The options the trials vary, in file order."""
        names = self.space or {name: None for point in self.points for name in point}
        return list(names)


def applies(name: str, arch: str) -> bool:
    """Whether setting ``name`` means something to architecture ``arch``: every FitConfig option
    does, a model option only where the architecture has it (VGG's dropout placement is nothing to
    a ResNet). Validation, sampling and the enqueued points all follow this one rule."""
    return name not in MODEL_FLAGS or name in model_options(arch)


def setting_value(cfg: FitConfig, name: str) -> Any:
    """The value that ``cfg`` trains with for setting ``name``: a FitConfig field, or a model option
    (the model's default where ``cfg`` leaves it unset; None where the architecture lacks it)."""
    if name in MODEL_FLAGS:
        return cfg.model_options.get(name, model_options(cfg.arch).get(name))
    return getattr(cfg, name)


# ----------------------------------------------------------------------------------------------
# The study file


def load_study_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study file; ConfigError names the file and the key at fault."""
    path = Path(path)
    doc = _read_yaml(path)
    _check_keys(path, "", doc, STUDY_KEYS)
    name = doc.get("study_name", path.stem)
    if not isinstance(name, str) or not name:
        raise _error(path, "study_name", "must be a non-empty string")
    n_trials = doc.get("n_trials")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise _error(path, "n_trials", f"must be a positive integer, got {n_trials!r}")
    fixed = _settings(path, "fixed", doc.get("fixed") or {})

    sampler, sampler_options = _named(path, "sampler", doc.get("sampler", "grid" if "grid" in doc else "tpe"), SAMPLERS)
    pruner, pruner_options = _named(path, "pruner", doc.get("pruner", "none"), PRUNERS)
    if (sampler == "grid") != ("grid" in doc):
        raise _error(path, "grid", "a grid needs sampler: grid" if "grid" in doc else "sampler grid needs a grid")
    if sampler != "grid" and "space" not in doc:
        raise _error(path, "space", f"sampler {sampler} needs a space to search")
    if sampler == "grid":
        for key in ("space", "enqueue"):
            if key in doc:
                raise _error(path, key, "not used by a grid study (every point is run)")

    arch = fixed.get("arch", FitConfig.arch)
    points = _expand_grid(path, doc["grid"], arch) if sampler == "grid" else ()
    space = _space(path, doc["space"], arch) if sampler != "grid" else {}
    enqueue = _enqueue(path, doc["enqueue"], space, arch) if "enqueue" in doc else ()
    spec = StudySpec(
        path, name, sampler, sampler_options, pruner, pruner_options, n_trials, fixed, points, space, enqueue
    )
    build_sampler(spec)  # the options are checked by the classes themselves
    build_pruner(spec)
    return spec


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read study file {path}: {err.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a study file is a mapping of {', '.join(STUDY_KEYS)}")
    return doc


def _error(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}")


def _check_mapping(path: Path, where: str, mapping: Any) -> None:
    if not isinstance(mapping, dict):
        raise _error(path, where, f"expected a mapping, got {mapping!r}")


def _check_keys(path: Path, where: str, mapping: Any, allowed) -> None:
    _check_mapping(path, where or "study", mapping)
    for key in mapping:
        if key not in allowed:
            key = f"{where}.{key}" if where else str(key)
            raise _error(path, key, f"unknown key; expected one of {', '.join(allowed)}")


def _check_options(path: Path, where: str, mapping: Any) -> None:
    """``mapping`` is keyed by options of ferlight.fit."""
    _check_mapping(path, where, mapping)
    for name in mapping:
        if name in MANAGED_FIELDS:
            raise _error(path, f"{where}.{name}", "set by the sweep for each trial")
        if name not in SETTABLE:
            raise _error(path, f"{where}.{name}", "not an option of ferlight.fit (see python -m ferlight.fit --help)")


def _named(path: Path, key: str, value: Any, registry: dict) -> tuple[str, dict]:
    """``name`` or ``{name: NAME, option: value, ...}`` (options of the Optuna class)."""
    options = dict(value) if isinstance(value, dict) else {"name": value}
    name = options.pop("name", None)
    if not isinstance(name, str) or name not in registry:
        where = f"{key}.name" if isinstance(value, dict) else key
        raise _error(path, where, f"unknown {key} {name!r}; choose from {', '.join(registry)}")
    return name, options


@functools.cache
def _option_parser() -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    add_dataclass_arguments(parser, FitConfig)
    add_dataclass_arguments(parser, ModelFlags)
    return parser


def _setting(path: Path, key: str, name: Any, value: Any) -> Any:
    """``value`` checked (and coerced, e.g. "1e-4" to a float) as FitConfig option ``name``."""
    try:
        value = _option_parser().parse_object({name: value})[name]
    except Exception as err:  # jsonargparse raises several types for a bad value
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise _error(path, key, lines[-1] if lines else f"bad value {value!r}") from None
    if name == "arch" and value not in list_models():
        raise _error(path, key, f"unknown architecture {value!r}; available: {', '.join(list_models())}")
    return value


def _settings(path: Path, where: str, mapping: Any) -> dict:
    _check_options(path, where, mapping)
    return {name: _setting(path, f"{where}.{name}", name, value) for name, value in mapping.items()}


def _check_model_options(path: Path, where: str, point: dict, default_arch: str) -> None:
    """A point must not set an option its architecture does not have."""
    arch = point.get("arch", default_arch)
    for name, value in point.items():
        if value is not None and not applies(name, arch):
            raise _error(path, f"{where}.{name}", f"architecture {arch!r} has no option {name!r}")


def _expand_grid(path: Path, grid: Any, default_arch: str) -> tuple[dict, ...]:
    """Blocks of ``option: [values]``, each expanded as a product; the points in order."""
    blocks = [grid] if isinstance(grid, dict) else grid
    if not isinstance(blocks, list) or not blocks:
        raise _error(path, "grid", "expected a block (option: [values]) or a non-empty list of blocks")
    points: list[dict] = []
    for b, block in enumerate(blocks):
        where = f"grid[{b}]"
        _check_options(path, where, block)
        if not block:
            raise _error(path, where, "an empty block")
        columns = {}
        for name, values in block.items():
            if not isinstance(values, list) or not values:
                raise _error(path, f"{where}.{name}", f"expected a non-empty list of values, got {values!r}")
            columns[name] = [_setting(path, f"{where}.{name}", name, value) for value in values]
        for combo in itertools.product(*columns.values()):
            point = dict(zip(columns, combo))
            _check_model_options(path, where, point, default_arch)
            if point in points:
                raise _error(path, where, f"point {point} appears twice in the grid")
            points.append(point)
    return tuple(points)


def _number_type(name: str) -> type | None:
    """float or int for a numeric FitConfig option (float wins for int-or-float), else None."""
    hint = option_types(FitConfig, ModelFlags)[name]
    types = get_args(hint) or (hint,)
    return float if float in types else int if int in types else None


def _space(path: Path, space: Any, default_arch: str) -> dict[str, BaseDistribution]:
    """``option: {choices: [...]}`` or ``option: {low, high, log, step}``: Optuna distributions."""
    _check_options(path, "space", space)
    if not space:
        raise _error(path, "space", "nothing to search")
    result: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        where = f"space.{name}"
        _check_keys(path, where, spec, ("choices", "low", "high", "log", "step"))
        if "choices" in spec:
            if set(spec) != {"choices"}:
                raise _error(path, where, "give either choices or low/high, not both")
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise _error(path, f"{where}.choices", "expected a non-empty list")
            values = [_setting(path, f"{where}.choices", name, value) for value in choices]
            if len(set(map(repr, values))) != len(values):
                raise _error(path, f"{where}.choices", "a value appears twice")
            result[name] = CategoricalDistribution(values)
        else:
            result[name] = _range(path, where, name, spec)
    archs = result["arch"].choices if "arch" in result else (default_arch,)
    for name in result:
        if not any(applies(name, arch) for arch in archs):
            raise _error(path, f"space.{name}", f"none of the architectures {', '.join(archs)} has this option")
    return result


def _range(path: Path, where: str, name: str, spec: dict) -> BaseDistribution:
    kind = _number_type(name)
    if kind is None:
        raise _error(path, where, f"{name} is not numeric: give choices instead of low/high")
    for key in ("low", "high"):
        if key not in spec:
            raise _error(path, f"{where}.{key}", "missing (a range needs low and high)")
    low, high = (_setting(path, f"{where}.{key}", name, spec[key]) for key in ("low", "high"))
    if low is None or high is None:
        raise _error(path, where, "low and high must be numbers")
    log_scale, step = spec.get("log", False), spec.get("step")
    if not isinstance(log_scale, bool):
        raise _error(path, f"{where}.log", f"must be true or false, got {log_scale!r}")
    if not low < high:
        raise _error(path, where, f"low ({low}) must be below high ({high})")
    if log_scale and low <= 0:
        raise _error(path, f"{where}.low", f"a log scale needs low > 0, got {low}")
    if step is not None:
        if log_scale:
            raise _error(path, f"{where}.step", "a log scale takes no step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise _error(path, f"{where}.step", f"must be a positive number, got {step!r}")
    if kind is int:
        return IntDistribution(low, high, log=log_scale, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log_scale, step=step)


def within(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    return value is not None and distribution.low <= value <= distribution.high


def _enqueue(path: Path, enqueue: Any, space: dict, default_arch: str) -> tuple[dict, ...]:
    """Points tried first: a grid study file (its points that lie in the space) or inline points."""
    if isinstance(enqueue, str):
        source = load_study_spec(path.parent / enqueue)
        if not source.points:
            raise _error(path, "enqueue", f"{enqueue} is not a grid study")
        points = tuple(p for p in source.points if all(n in space and within(space[n], v) for n, v in p.items()))
        if not points:
            raise _error(path, "enqueue", f"no point of {enqueue} lies in the space")
        return points
    if not isinstance(enqueue, list):
        raise _error(path, "enqueue", "expected a grid study file name or a list of points")
    points = []
    for i, point in enumerate(enqueue):
        where = f"enqueue[{i}]"
        point = _settings(path, where, point)
        for name, value in point.items():
            if name not in space:
                raise _error(path, f"{where}.{name}", "not searched: add it to the space or to fixed")
            if not within(space[name], value):
                raise _error(path, f"{where}.{name}", f"{value!r} lies outside the space")
        _check_model_options(path, where, point, default_arch)
        points.append(point)
    return tuple(points)


# ----------------------------------------------------------------------------------------------
# Optuna pieces


def build_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """The file's sampler; a grid walks the point index."""
    try:
        if spec.sampler == "grid":
            return optuna.samplers.GridSampler({POINT: list(range(len(spec.points)))}, **spec.sampler_options)
        return SAMPLERS[spec.sampler](**spec.sampler_options)
    except (TypeError, ValueError) as err:
        raise _error(spec.path, "sampler", str(err)) from None


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The file's pruner; it judges ``val/acc`` after each epoch."""
    try:
        return PRUNERS[spec.pruner](**spec.pruner_options)
    except (TypeError, ValueError) as err:
        raise _error(spec.path, "pruner", str(err)) from None
