"""Run the paper's whole grid (its Figures 5 and 7) and write results/paper_grid.md.

The grid is ``sweeps/paper_grid.yaml`` run as a ferlight study (:func:`ferlight.study.run_sweep`):
every point is one ``ferlight.fit`` run, tracked in MLflow under the study's parent run, and
``--workers`` runs several points at once (small models leave most of a GPU idle). A study that
was cut off resumes where it stopped when the same command runs again. Protocol ``paper``: the
epoch is chosen on the validation split (10% of Training), and the reported figure is the accuracy
on the paper's test set, PublicTest + PrivateTest (7,178 faces).

    # a lent H100, one call: bf16, channels_last, the faces kept on the GPU, 6 points at a time
    python bench/paper_grid.py --data .data/fer2013_images.u8.xz --accelerator gpu --precision bf16-mixed \
        --epochs 8 --workers 6
    # the small CPU version that CI exercises (a few minutes; accuracies mean nothing at this scale)
    python bench/paper_grid.py --data ../shared/data/fer2013.csv.gz --epochs 1 --limit-train-batches 2 --archs vgg11
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from optuna.trial import TrialState

from ferlight import tracking
from ferlight.errors import exit_on_error
from ferlight.evaluation.reports import write_text
from ferlight.hardware import machine as hardware
from ferlight.study import MLFLOW_RUN, POINT, StudySpec, SweepOptions, load_study_spec, run_sweep
from ferlight.training.config import FitConfig

ROOT = Path(__file__).resolve().parents[1]
# Test accuracies the paper reports (test = PublicTest + PrivateTest). The paper gives one figure
# per architecture (VGG11 and the attention model with Adam and batch 64); other points: none.
PAPER = {
    ("vgg11", "none"): 58.9,
    ("vgg11", "alternate"): 58.7,
    ("vgg11", "every"): 38.0,
    ("vgg16", "none"): 57.8,
    ("resnet10", None): 43.2,
    ("resnet18", None): 25.0,
    ("resnet50", None): 25.4,
    ("attention", None): 61.4,
}


def paper_figure(point: dict) -> float | None:
    """The paper's figure for this point: its stated setting is Adam with batch 64."""
    if point.get("optimizer", "adam") != "adam" or point.get("batch_size", 64) != 64:
        return None
    return PAPER.get((point["arch"], point.get("dropout_placement")))


def grid_spec(base: FitConfig, archs: set[str] | None) -> StudySpec:
    """The study file's grid, optionally cut to some architectures, named after the scale it runs
    at (a run at another scale is another study, never a resumption of this one)."""
    spec = load_study_spec(ROOT / "sweeps" / "paper_grid.yaml")
    points = tuple(p for p in spec.points if not archs or p["arch"] in archs)
    scale = f"{base.epochs}ep" + (f"-{base.limit_train_batches}b" if base.limit_train_batches else "")
    name = "-".join([spec.name, scale, *sorted(archs or ())])
    return replace(spec, name=name, points=points)


def run_grid(base: FitConfig, archs: set[str] | None, workers: int, output: Path, timeout: float | None = None) -> list[dict]:
    spec = grid_spec(base, archs)
    base = base.with_settings({**spec.fixed, "epochs": base.epochs, "protocol": "paper"})  # epochs: this script's
    study = run_sweep(spec, base, SweepOptions(workers=workers, timeout=timeout))
    client = tracking.client(base.tracking_uri)
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.params[POINT]):
        metrics = client.get_run(trial.user_attrs[MLFLOW_RUN]).data.metrics
        rows.append({
            "point": spec.points[trial.params[POINT]],
            "seconds": (trial.datetime_complete - trial.datetime_start).total_seconds(),
            "val": metrics.get("val/best_acc"), "test": metrics.get("test/acc"), "run_id": trial.user_attrs[MLFLOW_RUN],
        })
    write_table(rows, base, archs, workers, output)
    return rows


def write_table(rows: list[dict], base: FitConfig, archs: set[str] | None, workers: int, output: Path) -> None:
    device = hardware.summary()
    options = f"--data {Path(base.data).name if base.data else '(default)'} --epochs {base.epochs}"
    options += f" --precision {base.precision}" if base.precision else ""
    options += f" --limit-train-batches {base.limit_train_batches}" if base.limit_train_batches else ""
    options += f" --archs {' '.join(sorted(archs))}" if archs else ""
    options += f" --workers {workers}" if workers > 1 else ""
    lines = [
        "# The paper's grid, reproduced",
        "",
        "Protocol `paper`: Training split 90/10 into train / validation (epoch chosen on validation);",
        "test = PublicTest + PrivateTest (7,178 faces). Paper figures from its text (Adam, batch 64).",
        "",
        f"Machine: {device}; {workers} run(s) at a time; time = one run's wall clock, start to test. "
        f"Command: `python bench/paper_grid.py {options}`",
        "",
        "| arch | optimizer | batch | dropout | paper test % | ferlight val % | ferlight test % | time (s) | MLflow run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        p = row["point"]
        paper = paper_figure(p)
        lines.append(
            f"| {p['arch']} | {p.get('optimizer', 'adam')} | {p.get('batch_size', 64)} | "
            f"{p.get('dropout_placement') or '-'} | {f'{paper:.1f}' if paper else '-'} | "
            f"{100 * row['val']:.1f} | {100 * row['test']:.1f} | {row['seconds']:.0f} | `{row['run_id']}` |"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text(output, "\n".join(lines) + "\n")


@exit_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--limit-train-batches", type=float, default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--archs", nargs="*", help="only these architectures")
    parser.add_argument("--workers", type=int, default=1, help="points trained at once (processes)")
    parser.add_argument("--timeout", type=float, default=None, help="start no point after this many seconds")
    parser.add_argument("--experiment", default="paper-grid")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "paper_grid.md")
    args = parser.parse_args()
    limit = args.limit_train_batches
    base = FitConfig(
        data=args.data, epochs=args.epochs, precision=args.precision, accelerator=args.accelerator, devices=1,
        limit_train_batches=int(limit) if limit and limit >= 1 else limit, experiment=args.experiment,
        tracking_uri=args.tracking_uri, progress_bar=False,
    )
    run_grid(base, set(args.archs) if args.archs else None, args.workers, args.output, args.timeout)
    print(args.output.read_text())


if __name__ == "__main__":
    main()
