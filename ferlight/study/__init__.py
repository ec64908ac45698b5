"""Optuna studies over ferlight.fit's options: the study file (spec), its storage, the
objective, the workers that run trials (runner), and the summary on the parent MLflow run.

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "spec": ["StudySpec", "load_study_spec"],
        "runner": ["SweepOptions", "run_sweep", "trials_table"],
    },
)
