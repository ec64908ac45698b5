"""The model zoo: every architecture behind one registry.

    from ferlight.models import create_model, list_models
    model = create_model("fervgg", num_classes=7)   # the recommended architecture

Every model takes N x 1 x H x W normalised grey faces (H = W = 48, or 40/44 px crops) and returns
logits N x num_classes. The paper's models are ``vgg11``, ``vgg16``, ``resnet10``, ``resnet18``,
``resnet50`` and ``attention``; ``fervgg`` (recommended) and ``fervgg_small`` go beyond it.
See docs/models.md. This package needs torch alone.
"""

from ferlight.models import attention, fervgg, resnet, vgg  # noqa: F401  (registers the builders)
from ferlight.models._registry import create_model, list_models, model_options, register_model
from ferlight.models.trained import LoadedModel

__all__ = ["LoadedModel", "create_model", "list_models", "model_options", "register_model"]
