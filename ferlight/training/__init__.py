"""Training: the options of a run (FitConfig), the LightningModule (EmotionClassifier), one
run from config to MLflow (run_fit), and the callbacks that bound it (time budget, Ctrl-C).

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["FitConfig"],
        "classifier": ["EmotionClassifier"],
        "run": ["run_fit", "FitResult"],
        "budget": ["TimeBudget"],
    },
)
