"""Everything that talks to MLflow: the store (URI, schema, client), runs (the Trainer's logger, a
study's parent run, tags, params, metrics, artifacts, status, the run to resume), the best
checkpoint of a run, the params a run records beside its options, logged models and the Model
Registry (models), a run's datasets, and the databases behind the stores (a lock, reconnecting).

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "store": ["DEFAULT_TRACKING_URI", "resolve_tracking_uri", "ensure_store", "client", "unreachable"],
        "runs": [
            "create_logger", "create_run", "find_resumable_run", "run_exists", "run_status",
            "set_tags", "log_params", "log_metrics", "log_artifacts", "set_status",
        ],
        "checkpoints": ["BEST_CHECKPOINT", "CHECKPOINT_ARTIFACTS", "best_checkpoint"],
        "params": ["flatten", "git_commit"],
        "databases": ["DatabaseLock", "sqlite_file", "is_postgresql", "connection_lost", "reconnecting", "root_cause"],
        "models": ["CHAMPION", "is_model_uri", "log_model", "register_model", "promote_if_better", "model_checkpoint"],
        "datasets": ["log_splits"],
    },
)
