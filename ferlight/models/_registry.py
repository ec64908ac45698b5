"""The model registry: architecture names mapped to small builder functions (as in timm's registry).

A builder is a function ``name(num_classes=7, *, option=default, ...) -> nn.Module`` decorated with
:func:`register_model`; its keyword-only parameters are the model's options. Options must be plain
JSON values (numbers, strings, booleans, lists), because they are stored in checkpoints and MLflow
params and handed back to :func:`create_model` to rebuild the same model.
"""

from __future__ import annotations

import inspect
from typing import Callable, TypeVar

from torch import nn

from ferlight.errors import ConfigError

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_builders: dict[str, Callable[..., nn.Module]] = {}


def register_model(builder: Builder) -> Builder:
    """Register ``builder`` under its function name; the name must be new."""
    name = builder.__name__
    if name in _builders:
        raise ValueError(f"model {name!r} is registered twice")
    _builders[name] = builder
    return builder


def list_models() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_builders)


def model_options(name: str) -> dict[str, object]:
    """The options of architecture ``name`` with their defaults as JSON values (tuples become lists).

    ConfigError for an unknown name.
    """
    params = inspect.signature(_builder(name)).parameters.values()
    return {
        p.name: list(p.default) if isinstance(p.default, tuple) else p.default
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def create_model(name: str, num_classes: int = 7, **options) -> nn.Module:
    """Build architecture ``name`` with ``num_classes`` outputs; ConfigError names a bad name or option."""
    builder = _builder(name)
    known = model_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        accepted = ", ".join(known) or "none"
        raise ConfigError(f"model {name!r} has no option {unknown[0]!r} (its options: {accepted})")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    return builder(num_classes, **options)


def check_choice(option: str, value: object, choices: tuple) -> None:
    """ConfigError unless ``value`` is one of ``choices`` (for string options of a builder)."""
    if value not in choices:
        raise ConfigError(f"option {option}={value!r} is not one of {', '.join(map(str, choices))}")


def check_probability(option: str, value: object) -> None:
    """ConfigError unless ``value`` is a number in [0, 1) (dropout probabilities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"option {option}={value!r} must be a probability in [0, 1)")


def check_bool(option: str, value: object) -> None:
    """ConfigError unless ``value`` is True or False (a string like "no" would silently be true)."""
    if not isinstance(value, bool):
        raise ConfigError(f"option {option}={value!r} must be true or false")


def check_positive_int(option: str, value: object) -> None:
    """ConfigError unless ``value`` is a positive integer (widths, layer sizes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"option {option}={value!r} must be a positive integer")


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _builders[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
