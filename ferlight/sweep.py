"""``python -m ferlight.sweep FILE``: run (or resume) an Optuna study defined in a YAML file.

Every option of ``python -m ferlight.fit`` is accepted and sets the trials' training; the file's
``fixed`` options are the defaults the command line overrides, and each trial's settings override
both. Running the same command again resumes the study; several copies (or ``--workers N``) share
it. See docs/sweeps.md. Bad input ends with one line and exit status 2.
"""

from __future__ import annotations

import sys
import warnings
from typing import Sequence

from ferlight.hardware.machine import prefer_passive_openmp

prefer_passive_openmp()  # before any import below loads torch: OpenMP reads the policy once, at load

import optuna
from jsonargparse import ActionConfigFile, ArgumentParser

from ferlight.errors import exit_on_error
from ferlight.options import add_dataclass_arguments, parse_namespace, to_dataclass
from ferlight.study.runner import SweepOptions, join_ddp_trial, run_sweep
from ferlight.study.spec import MANAGED_FIELDS, load_study_spec
from ferlight.study.summary import trials_table
from ferlight.training.config import FitConfig, ModelFlags, to_fit_config

EXIT_INTERRUPTED = 130


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m ferlight.sweep",
        description="Run an Optuna study of ferlight.fit trials, each tracked as an MLflow child run.",
        exit_on_error=False,
    )
    parser.add_argument("study_file", help="the study definition (YAML), e.g. sweeps/paper_grid.yaml")
    add_dataclass_arguments(parser, SweepOptions)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    add_dataclass_arguments(parser, FitConfig, skip=MANAGED_FIELDS)
    add_dataclass_arguments(parser, ModelFlags)
    parser.set_defaults(devices=1)  # one device a trial unless asked (--devices N --strategy ddp)
    return parser


@exit_on_error
def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    parser = build_parser()
    spec = load_study_spec(parse_namespace(parser, argv).study_file)
    parser.set_defaults(spec.fixed)  # the file's fixed options < --config < the command line
    namespace = parse_namespace(parser, argv)
    base, options = to_fit_config(namespace), to_dataclass(namespace, SweepOptions)
    if join_ddp_trial(spec, base, options):  # this process is another DDP rank of a worker's trial
        return 0
    try:
        study = run_sweep(spec, base, options)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume the study", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(trials_table(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
