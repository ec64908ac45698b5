"""protocols: which rows are train, validation and test under ``standard`` and ``paper``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ferlight.data import USAGES, split_protocol
from ferlight.errors import ConfigError, DataError


def test_standard_protocol_follows_usage(data):
    splits = split_protocol(data, "standard")
    for split, usage in zip(["train", "val", "test"], USAGES):
        assert np.array_equal(splits[split], np.flatnonzero(data.usage == USAGES.index(usage)))
        assert splits[split].dtype == np.int64


def test_paper_protocol_is_a_stratified_90_10_split(make_data):
    data = make_data({"Training": 20, "PublicTest": 3, "PrivateTest": 2})
    splits = split_protocol(data, "paper", seed=0)
    training = np.flatnonzero(data.usage == 0)
    assert len(splits["val"]) == math.ceil(0.1 * len(training)) == 14
    assert np.array_equal(np.sort(np.concatenate([splits["train"], splits["val"]])), training)
    assert not set(splits["train"]) & set(splits["val"])
    assert np.array_equal(np.bincount(data.labels[splits["val"]], minlength=7), np.full(7, 2))
    assert np.array_equal(splits["test"], np.flatnonzero(data.usage > 0))
    again = split_protocol(data, "paper", seed=0)
    other = split_protocol(data, "paper", seed=1)
    assert np.array_equal(again["val"], splits["val"]) and not np.array_equal(other["val"], splits["val"])


def test_protocol_errors(data, make_data):
    with pytest.raises(ConfigError, match="unknown protocol 'kaggle'"):
        split_protocol(data, "kaggle")
    no_public = data.subset(data.usage != 1)
    with pytest.raises(DataError, match="protocol 'standard' has an empty val split: the data has .* 0 PublicTest"):
        split_protocol(no_public, "standard")
    tiny = make_data({"Training": 1, "PublicTest": 1, "PrivateTest": 1})
    with pytest.raises(DataError, match="cannot split the 7 Training rows 90/10 by class"):
        split_protocol(tiny, "paper")
