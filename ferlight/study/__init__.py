"""Optuna studies over ferlight.fit's options: the study file (spec), where a study lives
(storage), one trial (objective), the workers that run trials (runner), and what a study comes to
on its MLflow parent run and on the command line (summary).

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "spec": ["StudySpec", "load_study_spec", "POINT"],
        "objective": ["MLFLOW_RUN", "SETTINGS"],
        "runner": ["SweepOptions", "run_sweep"],
        "summary": ["summarize", "trials_table"],
    },
)
