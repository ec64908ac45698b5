"""What a study comes to: the best settings, ``best/val_acc`` and plots on its MLflow parent run,
and the trials as a text table for the command line.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from ferlight import tracking
from ferlight.study.objective import MLFLOW_RUN, name_objective, settings_of
from ferlight.study.spec import POINT

log = logging.getLogger(__name__)


def summarize(study: optuna.Study, parent_run_id: str, tracking_uri: str | None = None) -> None:
    """Best settings (tags ``best.<name>``), ``best/val_acc`` and plots on the parent run, which ends
    FINISHED; the best trial's model registered under the study's name (alias ``champion``).

    Tags rather than params: MLflow params are write-once, and the best trial changes as a study
    resumes.
    """
    client = tracking.client(tracking_uri)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        best = study.best_trial
        tags = {f"best.{name}": value for name, value in settings_of(best).items()}
        tags |= {"best.trial_number": best.number, "best.run_id": best.user_attrs.get(MLFLOW_RUN)}
        tracking.set_tags(client, parent_run_id, tags)
        tracking.log_metrics(client, parent_run_id, {"best/val_acc": best.value}, step=len(complete))
        with tempfile.TemporaryDirectory() as tmp:
            tracking.log_artifacts(client, parent_run_id, study_plots(study, Path(tmp)))
        register_best(study.study_name, best.user_attrs.get(MLFLOW_RUN), best.value, tracking_uri)
    tracking.set_status(client, parent_run_id, "FINISHED")


def register_best(name: str, run_id: str | None, score: float, tracking_uri: str | None = None) -> int | None:
    """Register the best trial's model under the study's name (once per run) and give it the
    ``champion`` alias if it beats the current champion's validation accuracy; its version."""
    client = tracking.client(tracking_uri)
    if run_id is None or not tracking.run_exists(client, run_id):
        return None
    outputs = client.get_run(run_id).outputs
    if not outputs or not outputs.model_outputs:
        return None  # a trial run without a logged model
    registered = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if registered:
        version = int(registered[0].version)
    else:
        model_uri = f"models:/{outputs.model_outputs[0].model_id}"
        version = tracking.register_model(model_uri, name, score, tracking_uri)
    tracking.promote_if_better(name, version, tracking_uri)
    return version


def study_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimisation history and parameter importances (from the settings, for a grid), drawn by
    Optuna's matplotlib functions. They set pyplot's style globally; ``rc_context`` undoes it."""
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    plots = [("optimization_history.png", optuna_plots.plot_optimization_history, study)]
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 2:
        plots.append(("param_importances.png", optuna_plots.plot_param_importances, _importance_study(study)))
    files = []
    with matplotlib.rc_context():
        for name, plot, source in plots:
            try:
                ax = plot(source)
            except Exception as err:  # e.g. no setting varies yet: the summary goes on without it
                log.warning("no %s: %s", name, err)
                continue
            ax.figure.savefig(folder / name, dpi=120, bbox_inches="tight")
            plt.close(ax.figure)
            files.append(folder / name)
    return files


def _importance_study(study: optuna.Study) -> optuna.Study:
    """For a grid, whose only parameter is the point index, an in-memory copy of the complete
    trials with their settings as categorical parameters; other studies as they are."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not any(POINT in t.params for t in complete):
        return study
    choices: dict[str, list] = {}
    for trial in complete:
        for name, value in settings_of(trial).items():
            if value not in choices.setdefault(name, []):
                choices[name].append(value)
    copy = optuna.create_study(direction="maximize")
    name_objective(copy)
    for trial in complete:
        settings = settings_of(trial)
        copy.add_trial(
            optuna.trial.create_trial(
                params=settings,
                distributions={name: CategoricalDistribution(choices[name]) for name in settings},
                value=trial.value,
            )
        )
    return copy


def trials_table(study: optuna.Study) -> str:
    """The trials as text: number (the best marked *), state, validation accuracy and settings.

    Read from the trials themselves rather than ``study.trials_dataframe()``: the table needs each
    trial's settings and retry history as they were stored, where the data frame pads missing
    values with NaN (turning an integer setting such as a batch size into a float).
    """
    trials = study.get_trials(deepcopy=False)
    best = study.best_trial.number if any(t.state == TrialState.COMPLETE for t in trials) else None
    history = RetryHeartbeatStaleTrialCallback.retry_history  # the trials a retry stands for
    retries = {history(t)[-1]: t.number for t in trials if history(t)}
    rows = [("trial", "state", "val acc", "settings")]
    for t in trials:
        mark = "*" if t.number == best else ""
        state = t.state.name.lower() + (f" (rerun as {retries[t.number]})" if t.number in retries else "")
        value = f"{t.value:.4f}" if t.value is not None else "-"
        settings = " ".join(f"{k}={v}" for k, v in settings_of(t).items())
        rows.append((f"{t.number}{mark}", state, value, settings))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:>{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in rows)
