"""The paper's 19 rows on the real FER2013, one ``ferlight.fit`` run each, resumable from a committed file.

Every row is the paper's architecture, optimizer, batch size and dropout placement under one protocol
(:data:`PROTOCOL`, fixed before the first run). A finished row is appended to ``results/paper_grid.jsonl``
with its settings, validation and test accuracy, per-class precision / recall / F1, seconds, hardware,
precision, MLflow run id, git commit and the exact command that trained it; then
``results/paper_grid.md`` and its plot are written again and, with ``--commit``, the three files are
committed. Running the same command again, on any machine, trains only the rows the file lacks; a row
cut off on this machine continues from its ``last.ckpt`` (``--resume auto``).

    # all 19 rows at the protocol's 8 epochs, in the background at low priority, a commit a row
    nice -n 19 python bench/paper_grid.py --data ../shared/data/fer2013.csv.gz --commit
    # some rows only, by id (see --list); --extension adds the 8 points the paper did not run
    python bench/paper_grid.py --data fer2013.csv.gz --rows resnet10-adam-32 attention-adam-64
    # the small version the tests run (accuracies mean nothing at this scale)
    python bench/paper_grid.py --data tiny.csv --epochs 1 --output grid.jsonl --rows vgg11-adam-64-none
"""

from __future__ import annotations

import argparse
import ctypes
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Lock

from ferlight import tracking
from ferlight.atomic import atomic_output
from ferlight.data import CLASS_NAMES
from ferlight.errors import ConfigError, exit_on_error
from ferlight.evaluation.reports import write_text
from ferlight.study import load_study_spec

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "sweeps" / "paper_grid.yaml"
EXTENSION = ROOT / "sweeps" / "paper_grid_extension.yaml"
RESULTS = ROOT / "results" / "paper_grid.jsonl"
EXPERIMENT = "paper-grid"
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
# The protocol of every row, fixed before the first run. The paper gives architecture, optimizer and
# batch size; it is silent on epochs, learning rate, schedule, augmentation and seed. Its model
# summaries are Keras's, whose Adam and RMSprop both default to lr 1e-3 (PyTorch's RMSprop default,
# 1e-2, is not the "usual" one for this paper). 8 epochs: the most the 2-core CPUs allow for 19 rows.
PROTOCOL = {"protocol": "paper", "lr": 1e-3, "scheduler": "none", "augment": "none", "weight_decay": 0.0,
            "label_smoothing": 0.0, "seed": 42}
EPOCHS = 8
# The paper's test accuracy per row (test = PublicTest + PrivateTest, 7,178 faces): Figure 5, the
# dropout paragraph, Figure 7 and the attention model's text.
PAPER = {
    "vgg11-adam-32-none": 58.4, "vgg11-adam-64-none": 58.9, "vgg11-adam-128-none": 56.8,
    "vgg16-adam-32-none": 57.8, "vgg16-adam-64-none": 55.6, "vgg16-adam-128-none": 54.7,
    "vgg11-adam-64-every": 38.0, "vgg11-adam-64-alternate": 58.7,
    "resnet10-adam-32": 43.2, "resnet10-adam-64": 37.7, "resnet10-adam-128": 39.4,
    "resnet10-rmsprop-32": 34.7, "resnet10-rmsprop-64": 41.1, "resnet10-rmsprop-128": 40.3,
    "resnet18-adam-32": 25.0, "resnet18-rmsprop-32": 25.1,
    "resnet50-adam-32": 25.4, "resnet50-rmsprop-32": 17.2,
    "attention-adam-64": 61.4,
}
# The paper's per-class F1 (classes in CLASS_NAMES order), its macro average, and the row each figure reports.
PAPER_F1 = {
    "Figure 4 (VGG11, Adam, batch 64)": ("vgg11-adam-64-none", (0.50, 0.57, 0.44, 0.79, 0.46, 0.75, 0.53), 0.57),
    "Figure 6 (ResNet10, Adam, batch 32)": ("resnet10-adam-32", (0.30, 0.30, 0.29, 0.60, 0.30, 0.61, 0.41), 0.40),
    "Figure 9 (attention model, Adam, batch 64)": ("attention-adam-64", (0.51, 0.60, 0.47, 0.82, 0.50, 0.73, 0.58), 0.60),
}


# Beyond the paper: ferlight's CPU recipe on the same split protocol, with its fixed epoch count
# rather than its 60-minute budget, so that the figure does not depend on the machine's speed or load.
BEYOND = {"arch": "fervgg_small", "optimizer": "sgd", "batch_size": 64, "recipe": "cpu_60min"}


def row_id(point: dict) -> str:
    """``arch-optimizer-batch[-dropout placement][-recipe]``, e.g. ``vgg11-adam-64-every``."""
    parts = [point["arch"], point["optimizer"], str(point["batch_size"]), point.get("dropout_placement"),
             point.get("recipe")]
    return "-".join(p for p in parts if p)


def grid_points(extension: bool, beyond: bool = False) -> dict[str, dict]:
    """The paper's rows by id, in the study file's order (plus the extension's and the recipe's, when asked)."""
    files = [GRID, EXTENSION] if extension else [GRID]
    points = {row_id(p): p for f in files for p in load_study_spec(f).points}
    return {**points, row_id(BEYOND): BEYOND} if beyond else points


def fit_command(point: dict, args: argparse.Namespace) -> list[str]:
    """The ``python -m ferlight.fit`` arguments that train one row under :data:`PROTOCOL` (a recipe's
    row: its own settings and epochs, on the paper's split)."""
    common = {"precision": args.precision, "accelerator": args.accelerator, "experiment": EXPERIMENT,
              "run_name": f"paper-grid/{row_id(point)}", "progress_bar": False, "resume": "auto"}
    if "recipe" in point:
        return ferlight_fit(args.data, {"config": str(ROOT / "recipes" / f"{point['recipe']}.yaml"),
                                        "protocol": "paper", "max_time": "null", **common})
    settings = {**PROTOCOL, **point, "epochs": args.epochs, **common}
    if args.limit_train_batches:
        settings["limit_train_batches"] = args.limit_train_batches
    return ferlight_fit(args.data, settings)


def ferlight_fit(data: str, settings: dict) -> list[str]:
    """``python -m ferlight.fit --data DATA --name value ...`` for these FitConfig / model settings."""
    command = ["python", "-m", "ferlight.fit", "--data", data]
    for name, value in settings.items():
        command += [f"--{name.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return command


def hardware_line(tags: dict) -> str:
    """The machine a run trained on, from its ``hardware.*`` tags."""
    return (f"{tags.get('hardware.cpu')} ({tags.get('hardware.cpu_id')}), {tags.get('hardware.cores')} cores, "
            f"flags {tags.get('hardware.cpu_flags')}, torch {tags.get('hardware.torch')}, "
            f"GPU {tags.get('hardware.gpu')}, OMP_WAIT_POLICY {tags.get('hardware.omp_wait_policy')}")


def val_history(client, run_id: str) -> list[float]:
    """Validation accuracy after each epoch (validated once an epoch)."""
    return [h.value for h in sorted(client.get_metric_history(run_id, "val/acc"), key=lambda h: h.step)]


def read_results(path: Path) -> list[dict]:
    """The rows already in the results file (none when it does not exist)."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}, line {number}: not a JSON row ({err.msg})") from None
    return rows


def check_scale(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    """Refuse to mix rows of another scale (epochs, batches a epoch) into one results file."""
    def scale(epochs, batches) -> str:
        return f"--epochs {epochs}" + (f" --limit-train-batches {batches}" if batches else "")

    for row in rows:
        if "recipe" in row:  # a recipe's row trains at the recipe's own epochs
            continue
        if (row["epochs"], row.get("limit_train_batches")) != (args.epochs, args.limit_train_batches):
            raise ConfigError(f"{path}: row {row['row']} was trained at {scale(row['epochs'], row.get('limit_train_batches'))}, "
                              f"not {scale(args.epochs, args.limit_train_batches)}; use another --output for another scale")


def finished_run(client, row: str):
    """The newest FINISHED MLflow run of this row."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    found = client.search_runs([experiment.experiment_id],
                               f"attributes.run_name = 'paper-grid/{row}' and attributes.status = 'FINISHED'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return found[0] if found else None


def record(client, run, point: dict, command: list[str], args: argparse.Namespace) -> dict:
    """The results-file row of one finished run, read back from MLflow."""
    m, tags = run.data.metrics, run.data.tags
    history = val_history(client, run.info.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        report = json.loads(Path(client.download_artifacts(run.info.run_id, "classification_report.json", tmp)).read_text())
    predicted = {c: (report[c]["recall"] * report[c]["support"] / report[c]["precision"] if report[c]["precision"] else 0)
                 for c in CLASS_NAMES}
    total = sum(report[c]["support"] for c in CLASS_NAMES)
    return {
        "row": row_id(point), **point, "limit_train_batches": args.limit_train_batches, **trained_with(run.data.params),
        "val_acc": m["val/best_acc"], "best_epoch": history.index(max(history)) + 1, "val_history": history,
        "test_acc": m["test/acc"], "test_f1_macro": m["test/f1_macro"],
        "per_class": {c: {"precision": report[c]["precision"], "recall": report[c]["recall"],
                          "f1": report[c]["f1-score"], "support": report[c]["support"]} for c in CLASS_NAMES},
        "predicted_share": {c: round(predicted[c] / total, 4) for c in CLASS_NAMES},
        "seconds": round((run.info.end_time - run.info.start_time) / 1000),
        "precision_resolved": run.data.params.get("precision_resolved"),
        "hardware": hardware_line(tags),
        "mlflow_run_id": run.info.run_id, "git_commit": tags.get("mlflow.source.git.commit"),
        "command": shlex.join(command).replace(f"{ROOT}/", ""),  # a recipe's path as seen from the repository
    }


def trained_with(params: dict) -> dict:
    """The protocol a run trained under, from its MLflow params (the grid's :data:`PROTOCOL`, or a recipe's)."""
    kinds = {"protocol": str, "epochs": int, "lr": float, "scheduler": str, "augment": str, "weight_decay": float,
             "label_smoothing": float, "seed": int, "tta": str}
    return {name: kind(params[name]) for name, kind in kinds.items()}


def end_with_parent() -> None:
    """In the child: be killed when the runner dies (Linux), so that a runner stopped mid-row leaves
    no orphan training that the next runner's resumed row would race; elsewhere, nothing."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):
        pass


def train_row(point: dict, args: argparse.Namespace) -> dict | None:
    """Train one row with ``python -m ferlight.fit`` (its log in ``--log-dir``); its record, or None if it failed."""
    command = fit_command(point, args)
    log = args.log_dir / f"{row_id(point)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%H:%M:%S')} {row_id(point)}: training (log {log})", flush=True)
    with log.open("a") as out:
        status = subprocess.run([sys.executable, *command[1:]], stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=end_with_parent).returncode
    if status != 0:
        print(f"{row_id(point)}: ferlight.fit exited with status {status}; see {log}", file=sys.stderr, flush=True)
        return None
    client = tracking.client(None)
    return record(client, finished_run(client, row_id(point)), point, command, args)


def write_results(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=False) + "\n" for r in rows))


def markdown(points: dict[str, dict], rows: list[dict], args: argparse.Namespace, plot: Path) -> str:
    """The results table: every row of the grid, trained or not, beside the paper's figure."""
    done = {r["row"]: r for r in rows}
    machines = sorted({r["hardware"] for r in rows})
    lines = [
        "# The paper's grid, reproduced on CPU",
        "",
        f"Protocol, the same for every row: `paper` (train 25,838 / validation 2,871 from Training, "
        f"stratified, fixed seed; test = PublicTest + PrivateTest, 7,178 faces), {args.epochs} epochs, "
        f"the row's optimizer at lr {PROTOCOL['lr']:g} (the Keras default of Adam and RMSprop), no schedule, "
        f"no augmentation, no weight decay, seed {PROTOCOL['seed']}, precision `{args.precision}` "
        "(resolved per row below). The epoch is chosen on validation accuracy; the test split is scored "
        "once per row, with that epoch's checkpoint. The paper states none of epochs, learning rate, "
        "schedule or augmentation.",
        "",
        f"Generated by `python bench/paper_grid.py` from `{args.output.name}`, which holds each row's "
        "per-class figures, MLflow run, git commit and the exact command that trained it.",
        "",
        "| row | arch | optimizer | batch | dropout | paper test % | ferlight test % | difference | ferlight val % "
        "| best epoch | most-predicted class | time (min) | precision | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in points.items():
        paper = PAPER.get(name)
        cells = [name, p["arch"], p["optimizer"], str(p["batch_size"]), p.get("dropout_placement") or "-",
                 f"{paper:.1f}" if paper else "-"]
        r = done.get(name)
        if r is None:
            cells += ["not yet run"] + [""] * 7
        else:
            top = max(r["predicted_share"], key=r["predicted_share"].get)
            test = 100 * r["test_acc"]
            best = PAPER["attention-adam-64"]
            versus = f"{test - paper:+.1f}" if paper else f"{test - best:+.1f} vs the paper's best"
            cells += [f"{test:.1f}", versus, f"{100 * r['val_acc']:.1f}",
                      str(r["best_epoch"]),
                      f"{top} {100 * r['predicted_share'][top]:.0f}%", f"{r['seconds'] / 60:.0f}",
                      r["precision_resolved"] or "-", f"M{machines.index(r['hardware']) + 1}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Machines:"] + [f"- M{i + 1}: {m}" for i, m in enumerate(machines)]
    if row_id(BEYOND) in points:
        lines += ["", f"`{row_id(BEYOND)}` is beyond the paper: ferlight's CPU recipe (`recipes/cpu_60min.yaml`: "
                  "fervgg_small, 44 px crops, strong augmentation, one-cycle SGD, label smoothing) on the same split "
                  "protocol, at its own 58 epochs instead of its 60-minute budget, tested with ten crops."]
    lines += ["", "Time: one row's MLflow run, start to end (training, validation each epoch, the test), on a "
              "machine shared with other work at normal priority while the grid ran at `nice 19`.", "",
              f"![paper against ferlight, row by row]({plot.name})", "", "## Per-class F1 beside the paper's figures",
              "", "Test split (7,178 faces).", ""]
    lines += ["| figure | row | " + " | ".join(CLASS_NAMES) + " | macro |", "|---|---|" + "---|" * (len(CLASS_NAMES) + 1)]
    for figure, (name, f1, macro) in PAPER_F1.items():
        lines.append(f"| {figure}, paper | {name} | " + " | ".join(f"{v:.2f}" for v in f1) + f" | {macro:.2f} |")
        r = done.get(name)
        ours = [r["per_class"][c]["f1"] for c in CLASS_NAMES] if r else None
        lines.append(f"| ferlight | {name} | " + (" | ".join(f"{v:.2f}" for v in ours) + f" | {r['test_f1_macro']:.2f} |"
                                                  if ours else "not yet run |" + " |" * len(CLASS_NAMES)))
    return "\n".join(lines) + "\n"


def draw(points: dict[str, dict], rows: list[dict], path: Path) -> None:
    """Paired bars: the paper's test accuracy and ferlight's, row by row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = {r["row"]: r for r in rows}
    names = list(points)
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.bar([x - 0.2 for x in xs], [PAPER.get(n, 0) for n in names], 0.4, label="paper", color="#999999")
    ax.bar([x + 0.2 for x in xs], [100 * done[n]["test_acc"] if n in done else 0 for n in names], 0.4,
           label="ferlight", color="#1f77b4")
    ax.axhline(100 * 1774 / 7178, color="#d62728", lw=0.8, ls="--", label="always 'happy' (24.7%)")
    ax.set_xticks(list(xs), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy %")
    ax.set_title("The paper's grid: test accuracy (PublicTest + PrivateTest); missing bar = not yet run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def commit(paths: list[Path], message: str) -> None:
    """Commit just these files (other staged or changed files stay as they are); a failure only warns."""
    repo = paths[0].parent
    for attempt in range(5):
        add = subprocess.run(["git", "-C", str(repo), "add", *map(str, paths)], capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "-C", str(repo), "commit", "-q", "-m", message, "--only", "--", *map(str, paths)],
            capture_output=True, text=True).returncode == 0
        if done:
            return
        time.sleep(2 + 3 * attempt)  # another git command holds the index lock
    print(f"warning: could not commit {', '.join(map(str, paths))}", file=sys.stderr)


@exit_on_error
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 csv/csv.gz or .u8.xz")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs of every row (the protocol: {EPOCHS})")
    parser.add_argument("--limit-train-batches", type=int, default=None, help="batches a epoch (tests only)")
    parser.add_argument("--precision", default="auto", help="ferlight.fit --precision (auto: the fastest here)")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--rows", nargs="*", help="only these rows, trained in this order (see --list)")
    parser.add_argument("--extension", action="store_true", help="also the 8 points the paper did not run")
    parser.add_argument("--beyond", action="store_true", help="also ferlight's CPU recipe on the paper's split")
    parser.add_argument("--workers", type=int, default=1, help="rows trained at once (one process each)")
    parser.add_argument("--timeout", type=float, default=None, help="start no row after this many seconds")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file (.jsonl); the .md and .png go beside it")
    parser.add_argument("--log-dir", type=Path, default=Path("grid-logs"), help="one ferlight.fit log a row")
    parser.add_argument("--commit", action="store_true", help="git-commit the results files after each row")
    parser.add_argument("--list", action="store_true", help="print the row ids and stop")
    args = parser.parse_args(argv)
    points = grid_points(args.extension, args.beyond)
    if args.list:
        print("\n".join(points))
        return 0
    unknown = [r for r in args.rows or () if r not in points]
    if unknown:
        raise ConfigError(f"--rows: unknown row {unknown[0]!r}; see --list")
    if not Path(args.data).exists():
        raise ConfigError(f"--data: no such file {args.data}")
    rows = read_results(args.output)
    check_scale(rows, args, args.output)
    tracking.ensure_store(None)  # one schema before parallel writers
    table, plot = args.output.with_suffix(".md"), args.output.with_suffix(".png")
    todo = [points[r] for r in (args.rows or points) if r not in {row["row"] for row in rows}]
    print(f"{len(rows)} rows in {args.output}; {len(todo)} to train: {', '.join(map(row_id, todo)) or 'none'}", flush=True)
    started, lock, failed = time.monotonic(), Lock(), []

    def one(point: dict) -> None:
        if args.timeout is not None and time.monotonic() - started > args.timeout:
            return
        result = train_row(point, args)
        with lock:
            if result is None:
                failed.append(row_id(point))
                return
            rows.append(result)
            rows.sort(key=lambda r: list(points).index(r["row"]) if r["row"] in points else len(points))
            write_results(args.output, rows)
            write_text(table, markdown(points, rows, args, plot))
            draw(points, rows, plot)
            print(f"{row_id(point)}: test {100 * result['test_acc']:.1f}% (val {100 * result['val_acc']:.1f}%)", flush=True)
            if args.commit:
                commit([args.output, table, plot], f"Paper grid: {row_id(point)}, test {100 * result['test_acc']:.1f}% "
                       f"(paper {PAPER.get(row_id(point), '-')}), {args.epochs} epochs on {result['hardware'].split(',')[0]}")

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(one, todo))
    write_text(table, markdown(points, rows, args, plot))
    draw(points, rows, plot)
    if failed:
        print(f"error: {len(failed)} row(s) failed: {', '.join(failed)}; their logs are in {args.log_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
