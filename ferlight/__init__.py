"""ferlight: facial emotion recognition on FER2013 with PyTorch Lightning.

The public API, loaded on first use: ``FER2013DataModule`` and ``load_fer2013`` (data),
``create_model`` and ``list_models`` (models), ``FitConfig``, ``EmotionClassifier`` and ``run_fit``
(training), ``Recognizer`` (inference).
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "data": ["FER2013DataModule", "load_fer2013"],
        "models": ["create_model", "list_models"],
        "training": ["FitConfig", "EmotionClassifier", "run_fit"],
        "inference": ["Recognizer"],
    },
)
