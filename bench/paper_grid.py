"""Run the paper's whole grid (its Figures 5 and 7) and write results/paper_grid.md.

Every point of ``sweeps/paper_grid.yaml`` is one ``ferlight.fit`` run (tracked in MLflow) on the
paper's protocol: the epoch is chosen on the validation split (10% of Training), and the reported
figure is the accuracy on the paper's test set, PublicTest + PrivateTest (7,178 faces).

    # a lent H100 (one call, about 10 minutes): bf16, channels_last, the data on the GPU
    python bench/paper_grid.py --data .data/fer2013_images.u8.xz --accelerator gpu --precision bf16-mixed --epochs 8
    # the small CPU version that CI exercises (a few minutes; accuracies mean nothing at this scale)
    python bench/paper_grid.py --data ../shared/data/fer2013.csv.gz --epochs 1 --limit-train-batches 2 --archs vgg11
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from ferlight.config import FitConfig
from ferlight.reports import write_text
from ferlight.study import trial_config
from ferlight.study_file import load_study_spec
from ferlight.training import run_fit

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


def run_grid(base: FitConfig, archs: set[str] | None, output: Path) -> list[dict]:
    spec = load_study_spec(ROOT / "sweeps" / "paper_grid.yaml")
    base = replace(base, **{**spec.fixed, "epochs": base.epochs, "protocol": "paper"})  # epochs: this script's
    rows = []
    for number, point in enumerate(spec.points):
        if archs and point["arch"] not in archs:
            continue
        name = "-".join(str(v) for v in point.values())
        cfg = trial_config(base, point, run_name=f"paper-grid-{name}")
        start = time.perf_counter()
        result = run_fit(cfg)
        rows.append({
            "point": point, "seconds": time.perf_counter() - start,
            "val": result.metrics.get("val/best_acc"), "test": result.metrics.get("test/acc"),
            "run_id": result.run_id,
        })
        write_table(rows, base, output)
    return rows


def write_table(rows: list[dict], base: FitConfig, output: Path) -> None:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})"
    lines = [
        "# The paper's grid, reproduced",
        "",
        "Protocol `paper`: Training split 90/10 into train / validation (epoch chosen on validation);",
        "test = PublicTest + PrivateTest (7,178 faces). Paper figures from its text (Adam, batch 64).",
        "",
        f"Machine: {device}; epochs {base.epochs}, precision {base.precision or '32-true'}, "
        f"limit_train_batches {base.limit_train_batches or 'all'}; command: `python bench/paper_grid.py "
        f"--epochs {base.epochs}{' --precision ' + base.precision if base.precision else ''}"
        f"{' --limit-train-batches ' + str(base.limit_train_batches) if base.limit_train_batches else ''}`",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--limit-train-batches", type=float, default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--archs", nargs="*", help="only these architectures")
    parser.add_argument("--experiment", default="paper-grid")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "paper_grid.md")
    args = parser.parse_args()
    limit = args.limit_train_batches
    base = FitConfig(
        data=args.data, epochs=args.epochs, precision=args.precision, accelerator=args.accelerator, devices=1,
        limit_train_batches=int(limit) if limit and limit >= 1 else limit, experiment=args.experiment,
        tracking_uri=args.tracking_uri,
    )
    run_grid(base, set(args.archs) if args.archs else None, args.output)
    print(args.output.read_text())


if __name__ == "__main__":
    main()
