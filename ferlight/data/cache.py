"""A cache of parsed FER2013 arrays, so that only the first run pays for parsing.

One ``.npz`` per source in ``$FERLIGHT_CACHE`` (default ``~/.cache/ferlight``), named after the
source (its name and a hash of its absolute path) and keyed by the absolute path, size and
modification time of every file it is read from, and by :data:`CACHE_FORMAT`. Editing or replacing
the source therefore misses the cache, and writing the new entry deletes the source's old ones.
Writes are atomic, and a damaged cache is rebuilt with a warning.
"""

from __future__ import annotations

import glob
import hashlib
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ferlight.atomic import atomic_output
from ferlight.data.fer_data import FERData
from ferlight.errors import DataError

CACHE_FORMAT = 1  # bump whenever a reader's output changes, so that old caches miss
ENV_CACHE = "FERLIGHT_CACHE"
ARRAYS = ("images", "labels", "usage")


def default_cache_dir() -> Path:
    """``$FERLIGHT_CACHE`` if set, else ``~/.cache/ferlight``."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "ferlight")


def cache_path(source: Path, files: Sequence[Path], cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of ``source``, read from ``files`` (a missing file keys as missing)."""
    key = hashlib.sha256(f"ferlight-data-cache {CACHE_FORMAT}\n".encode())
    for file in files:
        try:
            stat = file.stat()
            key.update(f"{os.path.abspath(file)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            key.update(f"{os.path.abspath(file)}\0missing\n".encode())
    where = hashlib.sha256(os.path.abspath(source).encode()).hexdigest()[:8]
    return Path(cache_dir or default_cache_dir()) / f"{source.name}.{where}.{key.hexdigest()[:20]}.npz"


def _entries_of_the_same_source(path: Path) -> list[Path]:
    """Cache files of the source that ``path`` caches (named ``<source>.<where>.<key>.npz``)."""
    source_and_where = path.name[: -len(".npz")].rsplit(".", 1)[0]
    return [p for p in path.parent.glob(f"{glob.escape(source_and_where)}.*.npz") if p != path]


def load_cache(path: Path) -> FERData | None:
    """The data cached at ``path``; None if there is none or it is damaged (with a warning)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return FERData(*(arrays[name] for name in ARRAYS))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, DataError) as err:
        problem = f"{type(err).__name__}: {err}"
        warnings.warn(f"FER2013 cache {path} is damaged ({problem}); parsing the source again", stacklevel=2)
        return None


def save_cache(path: Path, data: FERData) -> None:
    """Write ``data`` to ``path`` atomically; failing to write a cache only costs a warning."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{name: getattr(data, name) for name in ARRAYS})
        for old in _entries_of_the_same_source(path):  # the source changed since they were written
            old.unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(f"cannot write the FER2013 cache {path}: {err}", stacklevel=2)
