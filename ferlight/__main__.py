"""``ferlight COMMAND [options]`` (also ``python -m ferlight COMMAND``): the four commands in one.

Each command is the module of the same name (``python -m ferlight.fit`` and so on) with its own
``--help``; this only picks the module.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from ferlight import __version__
from ferlight.errors import EXIT_BAD_INPUT

COMMANDS = {
    "fit": "train a model on FER2013 and track the run in MLflow",
    "evaluate": "score checkpoints, MLflow runs or ensembles on a split",
    "sweep": "run or resume an Optuna study of fit runs",
    "live": "recognise emotions from a camera, a video or images",
}


def usage() -> str:
    lines = [f"usage: ferlight {{{','.join(COMMANDS)}}} [options]   (ferlight COMMAND --help for its options)", ""]
    lines += [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(f"ferlight {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    command = importlib.import_module(f"ferlight.{argv[0]}")
    return command.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
