"""options.py: one check for every enumerated choice, and dataclasses turned into command lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from ferlight.errors import ConfigError
from ferlight.options import TTA_MODES, build_parser, check_choice, option, options_for, parse_namespace, to_dataclass


@dataclass
class Example:
    tta: Literal[TTA_MODES] = option("none", "test-time views")
    size: int = option(48, "crop size")
    names: list = option(["a"], "some names")


def test_check_choice_names_the_choices():
    assert check_choice("test-time augmentation", "flip", TTA_MODES) == "flip"
    with pytest.raises(ConfigError, match=r"unknown test-time augmentation 'fivecrop'; choose from none, flip, tencrop"):
        check_choice("test-time augmentation", "fivecrop", TTA_MODES)


def test_parser_takes_types_defaults_and_choices_from_the_dataclass():
    parser = build_parser("prog", "an example", Example)
    assert to_dataclass(parse_namespace(parser, ["--size", "44"]), Example) == Example(size=44)
    assert "test-time views" in parser.format_help()
    with pytest.raises(ConfigError, match="tta"):
        parse_namespace(parser, ["--tta", "fivecrop"])
    assert Example().names is not Example().names  # mutable defaults are not shared


def test_options_for_hands_on_the_fields_a_callable_takes():
    def build(tta, size, other=None):
        return tta, size, other

    assert options_for(build, Example(size=40)) == {"tta": "none", "size": 40}
