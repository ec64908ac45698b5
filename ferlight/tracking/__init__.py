"""Everything that talks to MLflow: the store (URI, schema, logger) and the runs in it
(tags, status, artifacts, resumable runs, checkpoints).

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "store": ["resolve_tracking_uri", "ensure_store", "create_logger"],
    },
)
