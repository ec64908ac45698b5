"""Where MLflow runs are stored: the tracking URI, the store's schema, and a client for it.

Default store: MLflow's embedded SQLite database ``sqlite:///mlflow.db`` with artifacts under
``./mlruns/``, so a bare ``mlflow ui`` started in the same folder shows every run. A server is used
through ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``. MLflow is imported on first use, so that
importing ferlight's tracking costs nothing until a run is tracked.
"""

from __future__ import annotations

import os
from pathlib import Path

from ferlight.errors import ConfigError, first_line
from ferlight.tracking.databases import DatabaseLock

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The explicit URI, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working folder.

    The default is made absolute: MLflow caches one store per URI string, so a relative SQLite URI
    would keep pointing at the first folder it was used in.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri == DEFAULT_TRACKING_URI:
        return f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    return uri


def client(uri: str | None = None):
    """An ``MlflowClient`` for the store at ``uri`` (resolved as above)."""
    import mlflow

    return mlflow.MlflowClient(resolve_tracking_uri(uri))


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` came from a tracking server or database that did not answer (an outage, not
    a mistake): MLflow raises its own exception with the cause as its context, after its retries."""
    import requests

    from ferlight.tracking.databases import connection_lost

    while err is not None:
        if isinstance(err, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError)):
            return True
        if connection_lost(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def ensure_store(uri: str | None = None) -> str:
    """Check that the tracking store answers (creating a SQLite schema once); return its URI."""
    uri = resolve_tracking_uri(uri)
    try:
        with DatabaseLock(uri, "mlflow-schema"):  # two processes creating the schema at once race
            client(uri).search_experiments(max_results=1)
    except Exception as err:  # MLflow raises many types for an unusable store
        raise ConfigError(f"cannot use MLflow tracking URI {uri!r}: {type(err).__name__}: {first_line(err)}") from None
    return uri

