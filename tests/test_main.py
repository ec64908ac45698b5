"""The ``ferlight`` console script: one entry for the four commands."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ferlight.__main__ import COMMANDS, main


def test_each_command_is_reachable_with_its_own_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit:
            main([name, "--help"])
        assert exit.value.code == 0 and f"ferlight.{name}" in capsys.readouterr().out, name


# What Python prints for objects that have no readable form: <function f at 0x...>, <class 'dict'>, ...
PYTHON_REPR = re.compile(r"<(function|class|bound method|lambda|built-in|module)\b|<locals>| at 0x[0-9a-f]+|object at")


def test_no_help_shows_a_python_repr(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        assert "--help" in text and not PYTHON_REPR.search(text), (name, PYTHON_REPR.search(text))


def test_no_command_prints_usage_and_a_wrong_one_is_exit_2(capsys):
    assert main([]) == 0
    usage = capsys.readouterr().out
    assert all(name in usage for name in COMMANDS)
    assert main(["train"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown command 'train'; choose from fit, evaluate, sweep, live"


@pytest.mark.skipif(shutil.which("ferlight") is None, reason="the package is not installed with its console script")
def test_console_script_is_installed():
    out = subprocess.run(["ferlight", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ferlight ")
