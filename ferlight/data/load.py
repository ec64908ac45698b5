"""Find FER2013, read it in whichever layout it comes, cache the arrays, and apply FER+ labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ferlight.data.cache import cache_path, load_cache, save_cache
from ferlight.data.compact import SUFFIX as COMPACT_SUFFIX
from ferlight.data.compact import labels_path, read_compact
from ferlight.data.fer_data import FERData
from ferlight.data.ferplus import FERPLUS_NAME, relabel_ferplus
from ferlight.data.image_folders import image_files, read_image_folders
from ferlight.data.kaggle_csv import read_fer2013_csv
from ferlight.errors import ConfigError, DataError
from ferlight.options import LABEL_SETS, check_choice

ENV_DATA = "FERLIGHT_DATA"
DEFAULT_PATHS = ("data/fer2013.csv", "data/fer2013.csv.gz", "data/fer2013_images.u8.xz")
KAGGLE_URL = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"


def load_fer2013(
    path: str | os.PathLike | None = None,
    *,
    labels: str = "fer2013",
    ferplus_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> FERData:
    """FER2013 from ``path``, with its own labels or FER+'s.

    ``path`` is a Kaggle ``fer2013.csv`` (or ``.csv.gz``), a root of per-class image folders, or the
    compact ``fer2013_images.u8.xz``; None searches ``$FERLIGHT_DATA`` and then
    :data:`DEFAULT_PATHS`. ``labels="ferplus"`` relabels with ``ferplus_path`` (default:
    ``fer2013new.csv`` beside the FER2013 file) and drops faces without a FER+ majority. The
    parsed FER2013 is cached in ``cache_dir`` (see :mod:`ferlight.data.cache`).
    """
    check_choice("labels", labels, LABEL_SETS)
    source = find_source(path)
    data = _read_cached(source, cache_dir)
    if labels == "ferplus":
        if source.is_dir():
            raise DataError(
                f"{source}: FER+ labels are joined to FER2013 row by row, and image folders do not keep "
                "the CSV's row order; use fer2013.csv"
            )
        data = relabel_ferplus(data, ferplus_path or source.parent / FERPLUS_NAME, source)
    return data


def find_source(path: str | os.PathLike | None = None) -> Path:
    """``path`` if it exists, else the first existing default location; DataError saying where to get FER2013."""
    if path is not None:
        candidates = [Path(path)]
    else:
        candidates = [Path(os.environ[ENV_DATA])] if os.environ.get(ENV_DATA) else []
        candidates += [Path(p) for p in DEFAULT_PATHS]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise DataError(
        f"FER2013 not found (looked at {', '.join(map(str, candidates))}). Download fer2013.csv from Kaggle's "
        f"'Challenges in Representation Learning: Facial Expression Recognition Challenge' ({KAGGLE_URL}) "
        f"and put it at {DEFAULT_PATHS[0]}, set {ENV_DATA}, or pass its path"
    )


def _read_cached(source: Path, cache_dir: str | os.PathLike | None) -> FERData:
    read, files = _layout(source)
    cache = cache_path(source, files, cache_dir)
    data = load_cache(cache)
    if data is None:
        data = read(source)
        save_cache(cache, data)
    return data


def _layout(source: Path) -> tuple[Callable[[Path], FERData], list[Path]]:
    """The reader of ``source`` and the files its content comes from."""
    if source.is_dir():
        return read_image_folders, image_files(source)
    if source.name.endswith(COMPACT_SUFFIX):
        return read_compact, [source, labels_path(source)]
    return read_fer2013_csv, [source]
