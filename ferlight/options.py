"""Every enumerated option once, and the helpers that turn option dataclasses into command lines.

An option is a field of a dataclass (``training.config.FitConfig``, ``evaluate.EvalConfig``,
``inference.detection.DetectorOptions``, ...) with its type, default and help; an enumerated
option's type is ``Literal[...]`` of one of the tuples below. The command line, ``--config`` YAML,
study files and the docs read those fields; the library checks values with :func:`check_choice`
against the same tuples, so a choice is added in one place.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, Literal, Sequence, get_args, get_origin, get_type_hints

from ferlight.errors import ConfigError, first_line

if TYPE_CHECKING:  # jsonargparse loads with the first parser: models and data need none of it
    from jsonargparse import ArgumentParser

PROTOCOLS = ("paper", "standard")
LABEL_SETS = ("fer2013", "ferplus")
AUGMENTATIONS = ("none", "strong")
TTA_MODES = ("none", "flip", "tencrop")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULERS = ("none", "plateau", "cosine", "onecycle")
DROPOUT_PLACEMENTS = ("none", "every", "alternate")
DETECTORS = ("haar", "mtcnn", "yunet")
SPLITS = ("train", "val", "test")
INFERENCE_PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")  # auto: decided per machine


def check_choice(what: str, value: Any, choices: Sequence) -> Any:
    """``value`` if it is one of ``choices``, else a ConfigError that names the choices."""
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose from {', '.join(map(str, choices))}")
    return value


def option(default: Any, help: str) -> Any:
    """A dataclass field with its default and help text."""
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def option_types(*classes) -> dict[str, Any]:
    """The type of every field of ``classes``, by name."""
    return {name: kind for cls in classes for name, kind in get_type_hints(cls).items() if name in _names(cls)}


def _names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def add_dataclass_arguments(parser: ArgumentParser, cls, skip: Sequence[str] = ()) -> None:
    """Add ``--field-name`` options (type, default and help from the dataclass) to ``parser``; a
    ``Literal`` field is a plain choice, so that a wrong value gets "invalid choice ... (choose from ...)"."""
    types = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        kind, extra = types[f.name], {}
        if get_origin(kind) is list:  # --name A B C
            kind, extra = get_args(kind)[0], {"nargs": "+"}
        elif get_origin(kind) is Literal:  # no type: jsonargparse would print a str choice's type as a lambda's repr
            choices = get_args(kind)
            kind, extra = (None if all(isinstance(c, str) for c in choices) else type(choices[0])), {"choices": choices}
        if kind is not None:
            extra["type"] = kind
        parser.add_argument(f"--{f.name.replace('_', '-')}", default=default, help=f.metadata.get("help"), **extra)


def build_parser(prog: str, description: str, *classes) -> ArgumentParser:
    """A parser with ``--config FILE`` and one option per field of each of ``classes``."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog=prog, description=description, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    for cls in classes:
        add_dataclass_arguments(parser, cls)
    return parser


def parse_namespace(parser: ArgumentParser, argv: Sequence[str] | None):
    """Parse ``argv``; a bad option or config file becomes a one-line ConfigError."""
    try:
        return parser.parse_args(argv)
    except Exception as err:  # jsonargparse raises ArgumentError and others on bad values
        raise ConfigError(first_line(err, lines=2) or "invalid arguments") from None


def options_for(target, config) -> dict[str, Any]:
    """The values of ``config``'s fields that ``target`` (a class or function) takes as parameters
    of the same name: a config hands its options on without copying them field by field."""
    parameters = inspect.signature(target).parameters
    return {name: getattr(config, name) for name in _names(type(config)) if name in parameters}


def to_dataclass(namespace, cls):
    """The ``cls`` instance from the parsed values of its fields (other values ignored)."""
    return cls(**{name: namespace.get(name) for name in _names(cls) if name in namespace})
