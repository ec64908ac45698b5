"""`python -m ferlight.evaluate`: checkpoints, ensembles, test-time views, logging, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ferlight.evaluate import EvalConfig, main, run_evaluation
from ferlight.testing.checkpoints import save_checkpoint
from ferlight.testing.tiny_data import PER_CLASS


def config(tiny_csv, tmp_path, **kwargs):
    return EvalConfig(data=str(tiny_csv), cache_dir=str(tmp_path / "cache"), **{"precision": "32-true", **kwargs})


def test_report_and_accuracy_on_the_chosen_split(tiny_csv, tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "a.ckpt")
    assert main(["--checkpoint", str(ckpt), "--data", str(tiny_csv), "--cache-dir", str(tmp_path / "c"),
                 "--protocol", "standard", "--split", "val", "--batch-size", "32"]) == 0
    out, err = capsys.readouterr()
    assert "precision" in out.splitlines()[0] and "weighted avg" in out
    assert f"on {PER_CLASS['PublicTest'] * 7} faces: protocol standard, split val, tta none" in out
    chosen = out.strip().splitlines()[-1].rsplit("precision ", 1)[1]
    assert chosen in ("32-true", "bf16-mixed")  # auto, the default: what this machine runs fastest
    assert f"precision auto -> {chosen}" in err


def test_explicit_precision_is_used_as_given(tiny_csv, tmp_path):
    ckpt = save_checkpoint(tmp_path / "a.ckpt")
    exact = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(ckpt)]))
    bf16 = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(ckpt)], precision="bf16-mixed"))
    assert (exact.precision, bf16.precision) == ("32-true", "bf16-mixed")
    np.testing.assert_allclose(bf16.probabilities, exact.probabilities, atol=0.05)  # same model, bf16 rounding
    assert not (tmp_path / "cache" / "precision.json").exists()  # nothing measured


def test_ensemble_averages_member_probabilities(tiny_csv, tmp_path):
    a, b = save_checkpoint(tmp_path / "a.ckpt", seed=0), save_checkpoint(tmp_path / "b.ckpt", seed=1)
    one = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(a)]))
    two = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(b)]))
    both = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(a), str(b)]))
    np.testing.assert_allclose(both.probabilities, (one.probabilities + two.probabilities) / 2, atol=1e-5)
    assert both.confusion.sum() == PER_CLASS["PrivateTest"] * 7


def test_tencrop_differs_from_the_centre_crop(tiny_csv, tmp_path):
    ckpt = save_checkpoint(tmp_path / "a.ckpt", crop_size=44)
    centre = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(ckpt)]))
    tencrop = run_evaluation(config(tiny_csv, tmp_path, checkpoint=[str(ckpt)], tta="tencrop"))
    assert not np.allclose(centre.probabilities, tencrop.probabilities)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--checkpoint", "/nonexistent.ckpt"], "checkpoint not found: /nonexistent.ckpt"),
        (["--split", "dev"], "split"),
        (["--log", "true"], "--log needs exactly one --run-id"),
        (["--device", "toaster"], "unknown device 'toaster'"),
        (["--register-model", "fer"], "--register-model needs --log-model"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_csv, tmp_path, capsys, args, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(tiny_csv), *args])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_a_file_that_is_not_a_checkpoint(tiny_csv, tmp_path, capsys):
    bogus = tmp_path / "notes.ckpt"
    bogus.write_text("hello")
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(bogus), "--data", str(tiny_csv)])
    assert "is not a ferlight checkpoint" in capsys.readouterr().err


def test_an_unknown_model_uri_is_one_line(tiny_csv, mlflow_store, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--checkpoint", "models:/nobody@champion", "--tracking-uri", mlflow_store, "--data", str(tiny_csv)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and "no ferlight model at models:/nobody@champion" in lines[0]


@pytest.mark.slow
def test_the_shipped_model_is_logged_and_registered_as_an_mlflow_model(tiny_csv, mlflow_store, capsys):
    assert main(["--data", str(tiny_csv), "--tracking-uri", mlflow_store, "--precision", "32-true",
                 "--log-model", "true", "--register-model", "fer-default"]) == 0
    expected = run_evaluation(EvalConfig(data=str(tiny_csv), precision="32-true")).probabilities
    logged = run_evaluation(EvalConfig(checkpoint=["models:/fer-default/1"], tracking_uri=mlflow_store,
                                       data=str(tiny_csv), precision="32-true")).probabilities
    assert np.array_equal(expected, logged)
    assert "MLflow model models:/m-" in capsys.readouterr().err
