"""A run's splits as MLflow datasets: names, contexts, tags, and a digest that follows the data."""

from __future__ import annotations

import numpy as np

from ferlight import tracking
from ferlight.tracking.datasets import digest, log_splits


def arrays(seed=0, n=20):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n)


def test_the_digest_follows_every_pixel_and_label():
    images, labels = arrays()
    assert digest(images, labels) == digest(images.copy(), labels.copy())
    changed = images.copy()
    changed[-1, -1, -1] ^= 1  # one pixel of the last face: a sampling digest would miss it
    assert digest(changed, labels) != digest(images, labels)
    assert digest(images, np.roll(labels, 1)) != digest(images, labels)


def test_each_split_is_an_input_with_its_context_and_tags(mlflow_store, tmp_path):
    client = tracking.client(mlflow_store)
    run_id = tracking.create_run(client, "ferlight", "inputs", {})
    splits = {"train": arrays(0, 30), "val": arrays(1), "test": arrays(2)}
    log_splits(client, run_id, splits, str(tmp_path / "fer2013.csv"), "fer2013-standard", {"protocol": "standard"})
    inputs = client.get_run(run_id).inputs.dataset_inputs
    found = {i.dataset.name: {t.key: t.value for t in i.tags} for i in inputs}
    assert set(found) == {"fer2013-standard-train", "fer2013-standard-val", "fer2013-standard-test"}
    assert found["fer2013-standard-train"]["mlflow.data.context"] == "training"
    assert found["fer2013-standard-val"]["mlflow.data.context"] == "validation"
    assert (found["fer2013-standard-train"]["rows"], found["fer2013-standard-test"]["protocol"]) == ("30", "standard")
    digests = {i.dataset.name: i.dataset.digest for i in inputs}
    assert digests["fer2013-standard-test"] == digest(*splits["test"])
