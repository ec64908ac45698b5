"""Evaluation: probabilities with test-time views and ensembles (predict), the paper's
classification report (reports), and figures (plots, the only module that imports matplotlib).

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "predict": ["evaluate", "predict_proba", "tta_probabilities", "Evaluation"],
        "reports": ["classification_report", "format_report", "write_report"],
    },
)
