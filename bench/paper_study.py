"""An Optuna study on top of the paper's grid, resumable on any machine from committed records.

``sweeps/paper_study.yaml`` defines it: TPE over VGG11's optimizer, learning rate, batch size, dropout
placement and rate, weight decay and label smoothing, pruning below the median or at chance, the grid's protocol and epochs.
It starts from two committed files:
- ``results/paper_grid.jsonl``: the grid's finished VGG11 rows enter the study as completed trials,
  with their per-epoch validation accuracy (no retraining);
- ``results/paper_study.jsonl``: this study's own finished trials (complete or pruned), added back the
  same way, so that a new machine's empty Optuna database continues where the record ends.
New trials run one at a time through ferlight's sweep runner (each a ``ferlight.fit`` run, an MLflow
child run of the study's parent run; the best trial is registered as the study's ``champion``). Each
finished trial is appended to the record, ``results/paper_study.md`` and its plots are written again,
and with ``--commit`` the files are committed. The best trial is chosen on validation accuracy.

    nice -n 19 python bench/paper_study.py --data ../shared/data/fer2013.csv.gz --trials 20 --commit
    python bench/paper_study.py --data tiny.csv --epochs 1 --trials 2 --output study.jsonl   # at tiny scale
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from ferlight.hardware.machine import prefer_passive_openmp

prefer_passive_openmp()  # as the ferlight commands do, before torch loads: trials train in this process

import optuna
from optuna.trial import TrialState, create_trial

import paper_grid
from ferlight import tracking
from ferlight.errors import ConfigError, exit_on_error
from ferlight.evaluation.reports import write_text
from ferlight.study import StudySpec, load_study_spec
from ferlight.study.objective import MLFLOW_RUN, SETTINGS, settings_of
from ferlight.study.runner import SweepOptions, open_study, run_sweep
from ferlight.study.spec import setting_value, within
from ferlight.study.storage import default_storage
from ferlight.study.summary import study_plots
from ferlight.training.config import FitConfig

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "sweeps" / "paper_study.yaml"
RECORD = ROOT / "results" / "paper_study.jsonl"
EXPERIMENT = "paper-study"
SOURCE = "source"  # trial user attribute: where a trial comes from (grid row id, record id)


def base_config(spec: StudySpec, args: argparse.Namespace) -> FitConfig:
    """What every trial trains with besides its searched settings: the grid's protocol."""
    protocol = {k: v for k, v in paper_grid.PROTOCOL.items() if k not in spec.searched}
    cfg = FitConfig(data=args.data, accelerator=args.accelerator, devices=1, precision=args.precision,
                    experiment=EXPERIMENT, progress_bar=False, limit_train_batches=args.limit_train_batches)
    return cfg.with_settings({**protocol, **spec.fixed, "epochs": args.epochs})


def grid_trial(row: dict, spec: StudySpec, base: FitConfig) -> optuna.trial.FrozenTrial | None:
    """A finished grid row as a completed trial, or None if its settings lie outside the space."""
    point = {k: row[k] for k in ("optimizer", "batch_size", "dropout_placement", "lr", "weight_decay", "label_smoothing")
             if row.get(k) is not None}
    cfg = base.with_settings(point)
    params = {name: setting_value(cfg, name) for name in spec.searched}
    if row["arch"] != cfg.arch or not all(within(spec.space[n], v) for n, v in params.items()):
        return None
    return create_trial(
        state=TrialState.COMPLETE, params=params, distributions={n: spec.space[n] for n in params}, value=row["val_acc"],
        intermediate_values=dict(enumerate(row.get("val_history", []))),
        user_attrs={SETTINGS: params, SOURCE: f"grid:{row['row']}", MLFLOW_RUN: row["mlflow_run_id"]},
    )


def recorded_trial(record: dict, spec: StudySpec) -> optuna.trial.FrozenTrial:
    """A trial of the committed record, as it ended (complete or pruned)."""
    state = TrialState[record["state"]]
    return create_trial(
        state=state, params=record["params"], distributions={n: spec.space[n] for n in record["params"]},
        value=record["val_acc"] if state == TrialState.COMPLETE else None,
        intermediate_values={int(step): value for step, value in record["intermediate"].items()},
        user_attrs={SETTINGS: record["params"], SOURCE: record["id"], MLFLOW_RUN: record["mlflow_run_id"]},
    )


def seed(study: optuna.Study, trials: list) -> None:
    """Add the trials the study does not hold yet (a new machine's database holds none)."""
    held = {t.user_attrs.get(SOURCE) for t in study.get_trials(deepcopy=False)}
    for trial in trials:
        if trial.user_attrs[SOURCE] not in held:
            study.add_trial(trial)


def new_records(study: optuna.Study, known_runs: set[str], records: list[dict], args, base: FitConfig) -> list[dict]:
    """Records of the trials this machine finished that the record lacks."""
    client = tracking.client(base.tracking_uri)
    found = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        run_id = trial.user_attrs.get(MLFLOW_RUN)
        if run_id is None or run_id in known_runs or SOURCE in trial.user_attrs:
            continue
        run = client.get_run(run_id)
        settings = settings_of(trial)
        fit = {**{k: v for k, v in paper_grid.PROTOCOL.items() if k not in settings}, "arch": base.arch, **settings,
               "epochs": args.epochs}
        found.append({
            "id": f"trial-{len(records) + len(found) + 1:03d}", "state": trial.state.name, "params": settings,
            "val_acc": trial.value, "intermediate": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
            "test_acc": run.data.metrics.get("test/acc"), "epochs": args.epochs,
            "limit_train_batches": args.limit_train_batches,
            "seconds": round(((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000),
            "precision_resolved": run.data.params.get("precision_resolved"),
            "hardware": paper_grid.hardware_line(run.data.tags), "mlflow_run_id": run_id,
            "git_commit": run.data.tags.get("mlflow.source.git.commit"),
            "command": shlex.join(paper_grid.ferlight_fit(args.data, fit)),  # the trial's training, without pruning
        })
    return found


def percent(value: float | None) -> str:
    return f"{100 * value:.1f}" if value is not None else "-"


def markdown(study: optuna.Study, records: list[dict], grid_rows: list[dict], args, plots: list[Path]) -> str:
    # every trial, seeded or new, names its MLflow run: its committed row and its name in the tables
    by_run = {r["mlflow_run_id"]: (f"grid:{r['row']}", r) for r in grid_rows} | {r["mlflow_run_id"]: (r["id"], r) for r in records}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    lines = ["# An Optuna study on top of the paper's grid", "",
             f"TPE over VGG11's training settings (`sweeps/paper_study.yaml`), pruned below the median of the other trials or, from the fourth epoch, under 26% (chance), the grid's protocol: "
             f"`paper` split, {args.epochs} epoch(s), the epoch chosen on validation accuracy, test = PublicTest + "
             "PrivateTest (7,178 faces). The grid's finished VGG11 rows entered as completed trials. The best trial "
             "is chosen on validation accuracy; test accuracy is shown, never used to choose.", "",
             f"Generated by `python bench/paper_study.py` from `{args.output.name}` and `{args.grid.name}`.", ""]
    if complete:
        best = max(complete, key=lambda t: t.value)
        name, row = by_run.get(best.user_attrs.get(MLFLOW_RUN), ("-", {}))
        grid_best = max(grid_rows, key=lambda r: r["val_acc"]) if grid_rows else None
        lines += ["## Best trial (chosen on validation)", "",
                  "| | validation % | test % |", "|---|---|---|",
                  f"| the study's best: {name} | {percent(best.value)} | "
                  f"{percent(row.get('test_acc'))} |"]
        if grid_best:
            lines.append(f"| the grid's best row (on validation): {grid_best['row']} | {percent(grid_best['val_acc'])} | "
                         f"{percent(grid_best['test_acc'])} |")
        lines += [f"| the paper's best row: attention-adam-64 | - | {paper_grid.PAPER['attention-adam-64']:.1f} |", "",
                  "Settings: " + ", ".join(f"`{k}={v}`" for k, v in settings_of(best).items()), ""]
        try:
            importances = optuna.importance.get_param_importances(study)
            lines += ["## Parameter importances (fANOVA, on the completed trials' validation accuracy)", "",
                      "| parameter | importance |", "|---|---|"]
            lines += [f"| {name} | {value:.3f} |" for name, value in importances.items()] + [""]
        except (RuntimeError, ValueError) as err:
            lines += [f"Parameter importances: not yet ({err}).", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots] + [""]
    lines += ["## Trials", "", "| trial | state | validation % | test % | settings | machine |", "|---|---|---|---|---|---|"]
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        source, r = by_run.get(trial.user_attrs.get(MLFLOW_RUN), ("-", {}))
        value = trial.value if trial.state == TrialState.COMPLETE else max(trial.intermediate_values.values(), default=None)
        settings = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings_of(trial).items())
        lines.append(f"| {source} | {trial.state.name.lower()} | {percent(value)} | {percent(r.get('test_acc'))} | "
                     f"{settings} | {r.get('hardware', '-').split(', flags')[0]} |")
    return "\n".join(lines) + "\n"


def write_report(study: optuna.Study, records: list[dict], grid_rows: list[dict], args) -> list[Path]:
    """results/paper_study.md and its plots (optimisation history, parameter importances); the files."""
    table = args.output.with_suffix(".md")
    plots = []
    with tempfile.TemporaryDirectory() as tmp:
        for made in study_plots(study, Path(tmp)):
            target = args.output.with_name(f"{args.output.stem}_{made.name}")
            target.write_bytes(made.read_bytes())
            plots.append(target)
    write_text(table, markdown(study, records, grid_rows, args, plots))
    return [args.output, table, *plots]


@exit_on_error
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 csv/csv.gz or .u8.xz")
    parser.add_argument("--trials", type=int, default=20, help="finish when the record holds this many trials of its own")
    parser.add_argument("--epochs", type=int, default=paper_grid.EPOCHS, help="epochs a trial (the grid's)")
    parser.add_argument("--limit-train-batches", type=int, default=None, help="batches a epoch (tests only)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--timeout", type=float, default=None, help="start no trial after this many seconds")
    parser.add_argument("--grid", type=Path, default=paper_grid.RESULTS, help="the grid's results file")
    parser.add_argument("--output", type=Path, default=RECORD, help="the study's record (.jsonl); .md and plots beside it")
    parser.add_argument("--storage", default=None, help="Optuna RDB URL (default: sqlite:///optuna.db here)")
    parser.add_argument("--commit", action="store_true", help="git-commit the record and report after each trial")
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        raise ConfigError(f"--data: no such file {args.data}")
    spec = load_study_spec(STUDY)
    records = paper_grid.read_results(args.output)
    paper_grid.check_scale([{"row": r["id"], **r} for r in records], args, args.output)
    grid_rows = [r for r in paper_grid.read_results(args.grid) if r["epochs"] == args.epochs
                 and r.get("limit_train_batches") == args.limit_train_batches]
    base = base_config(spec, args)
    storage = args.storage or default_storage(base.tracking_uri)
    options = SweepOptions(storage=storage)
    tracking.ensure_store(base.tracking_uri)
    study = open_study(spec, base, storage, options)
    seed(study, [t for t in (grid_trial(r, spec, base) for r in grid_rows) if t is not None]
         + [recorded_trial(r, spec) for r in records])
    known = {r["mlflow_run_id"] for r in records} | {r["mlflow_run_id"] for r in grid_rows}
    started = time.monotonic()
    print(f"{len(records)} trials in {args.output}, {len(grid_rows)} grid rows; running until {args.trials}", flush=True)
    while len(records) < args.trials and (args.timeout is None or time.monotonic() - started < args.timeout):
        study = run_sweep(spec, base, SweepOptions(storage=storage, n_trials=len(study.get_trials(deepcopy=False)) + 1))
        found = new_records(study, known, records, args, base)
        if not found:
            failed = study.get_trials(deepcopy=False)[-1]
            print(f"error: trial {failed.number} ended {failed.state.name.lower()}; its MLflow run "
                  f"{failed.user_attrs.get(MLFLOW_RUN)} says why", file=sys.stderr)
            return 1
        records += found
        known |= {r["mlflow_run_id"] for r in found}
        paper_grid.write_results(args.output, records)
        files = write_report(study, records, grid_rows, args)
        for r in found:
            print(f"{r['id']}: {r['state'].lower()}, validation {percent(r['val_acc'])}%", flush=True)
        if args.commit:
            r = found[-1]
            paper_grid.commit(files, f"Paper study: {r['id']} {r['state'].lower()}, validation {percent(r['val_acc'])}%")
    write_report(study, records, grid_rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
