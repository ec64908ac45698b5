"""The machine: what CPU or GPU runs the code (machine), and which numeric precision runs
fastest on it (precision).

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "machine": ["summary", "tags"],
        "precision": ["Decision", "inference_decision", "resolve_training_precision"],
    },
)
