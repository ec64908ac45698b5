"""``python -m ferlight.fit --arch ARCH``: train one architecture and track the run in MLflow.

Every option of :class:`ferlight.training.FitConfig` (and ``ModelFlags``) is a ``--option`` here (see ``--help``), and
``--config FILE`` reads them from YAML. Bad input ends with one line and exit status 2.
"""

from __future__ import annotations

import sys
from typing import Sequence

from ferlight.hardware.machine import prefer_passive_openmp

prefer_passive_openmp()  # before any import below loads torch: OpenMP reads the policy once, at load

from ferlight.options import parse_namespace
from ferlight.training.config import fit_parser, to_fit_config
from ferlight.errors import exit_on_error


@exit_on_error
def main(argv: Sequence[str] | None = None) -> int:
    parser = fit_parser("python -m ferlight.fit", "Train a facial-emotion model on FER2013, tracked in MLflow.")
    cfg = to_fit_config(parse_namespace(parser, argv))
    from ferlight.training.run import run_fit  # after parsing: --help and option errors stay instant

    result = run_fit(cfg)
    if result.run_id is not None:
        summary = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()) if k in ("val/best_acc", "test/acc", "test/f1_macro"))
        print(f"MLflow run {result.run_id}: {summary}; best checkpoint {result.best_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
