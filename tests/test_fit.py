"""`python -m ferlight.fit`: the MLflow contract, resumption, interruption, bad input and DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml

from ferlight.hardware import machine as hardware
from ferlight.hardware import precision
from ferlight.evaluate import EvalConfig, run_evaluation
from ferlight.inference.checkpoint import load_model, resolve_checkpoint
from ferlight.data import CLASS_NAMES
from ferlight.fit import main
from ferlight.models import list_models
from ferlight.testing.tiny_data import PER_CLASS


def store(workdir: Path) -> str:
    """The default store of a run started in ``workdir``, as an absolute URI."""
    return f"sqlite:///{workdir}/mlflow.db"


def fit_args(tiny_csv, *extra):
    """A tiny run in float32 (not ``auto``: no benchmark, and no bf16 training on the CPU in tests)."""
    return ["--data", str(tiny_csv), "--arch", "fervgg_small", "--epochs", "2", "--batch-size", "32",
            "--accelerator", "cpu", "--devices", "1", "--precision", "32-true", *extra]


def only_run(uri: str):
    runs = mlflow.MlflowClient(uri).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()]
    )
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def test_default_store_holds_the_whole_contract(workdir, tiny_csv):
    assert main(fit_args(tiny_csv, "--protocol", "standard", "--run-name", "contract")) == 0
    uri = store(workdir)
    assert (workdir / "mlflow.db").is_file() and (workdir / "mlruns").is_dir()
    run = only_run(uri)
    client = mlflow.MlflowClient(uri)
    assert run.info.status == "FINISHED" and run.info.run_name == "contract"

    names = [n.lower() for n in CLASS_NAMES]
    per_epoch = ["train/loss", "train/acc", "val/loss", "val/acc", "val/f1_macro"] + [f"val/f1/{n}" for n in names]
    for key in per_epoch:
        assert len(client.get_metric_history(run.info.run_id, key)) == 2, key
    test_keys = ["test/acc", "test/f1_macro"] + [f"test/{k}/{n}" for k in ("precision", "recall", "f1") for n in names]
    assert set(test_keys) <= run.data.metrics.keys()

    params = run.data.params
    for key in ("arch", "protocol", "optimizer", "lr", "batch_size", "epochs", "seed", "precision", "devices",
                "dropout_placement", "ferlight_version", "git_commit"):
        assert key in params, key
    assert (params["arch"], params["protocol"], params["optimizer"], params["batch_size"]) == ("fervgg_small", "standard", "adam", "32")
    assert (params["precision"], params["precision_resolved"]) == ("32-true", "32-true")  # explicit wins
    assert run.data.metrics["epochs_run"] == 2.0

    tags = run.data.tags  # the machine, on every run
    assert tags["hardware.cpu"] == hardware.cpu_model() and tags["hardware.cores"] == str(hardware.usable_cores())
    assert tags["hardware.cpu_flags"] == (" ".join(hardware.cpu_flags()) or "none")
    assert tags["hardware.torch_threads"].isdigit() and tags["hardware.torch"] == torch.__version__
    assert {"hardware.onednn_max_cpu_isa", "hardware.gpu"} <= tags.keys()

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"classification_report.txt", "classification_report.json", "confusion_matrix.png", "config.yaml",
            "checkpoints"} <= artifacts
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, tracking_uri=uri, dst_path=str(workdir / "dl")))
    report = json.loads((local / "classification_report.json").read_text())
    assert sum(report[n]["support"] for n in names) == PER_CLASS["PrivateTest"] * 7
    assert report["micro avg"]["precision"] == pytest.approx(run.data.metrics["test/acc"])
    assert "precision" in (local / "classification_report.txt").read_text().splitlines()[0]

    config = yaml.safe_load((local / "config.yaml").read_text())
    assert config["arch"] == "fervgg_small" and config["protocol"] == "standard"
    loaded = load_model(local / "checkpoints" / "best.ckpt")
    assert loaded.arch == "fervgg_small" and loaded.class_names == tuple(CLASS_NAMES)

    inputs = {i.dataset.name: {t.key: t.value for t in i.tags} for i in run.inputs.dataset_inputs}  # Dataset column
    assert set(inputs) == {f"fer2013-standard-{split}" for split in ("train", "val", "test")}
    assert inputs["fer2013-standard-test"]["rows"] == str(PER_CLASS["PrivateTest"] * 7)
    [model] = run.outputs.model_outputs  # Model column: the run's pyfunc model, from the best checkpoint
    assert load_model(resolve_checkpoint(f"runs:/{run.info.run_id}/model", tracking_uri=uri)).class_names == tuple(CLASS_NAMES)


@pytest.mark.slow
def test_system_metrics_are_logged_when_asked(workdir, tiny_csv, monkeypatch):
    pytest.importorskip("psutil", reason="--system-metrics needs the system-metrics extra")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")  # MLflow's own setting; default 10 s
    assert main(fit_args(tiny_csv, "--system-metrics", "true")) == 0
    metrics = only_run(store(workdir)).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= metrics.keys()


@pytest.mark.slow
def test_registered_model_loads_in_a_fresh_process_with_evaluates_numbers(workdir, tiny_csv, run_command):
    """``--register-model``: ``models:/NAME/1`` in another process gives ``ferlight.evaluate``'s probabilities."""
    assert main(fit_args(tiny_csv, "--protocol", "standard", "--register-model", "fer-tiny")) == 0
    script = (
        "import mlflow, numpy as np, sys\n"
        "from ferlight.data import load_fer2013, split_protocol\n"
        "from ferlight.inference.pyfunc import input_example\n"
        "data = load_fer2013(sys.argv[1]); faces = data.images[split_protocol(data, 'standard')['test']]\n"
        "mlflow.set_tracking_uri(sys.argv[2])\n"
        "out = mlflow.pyfunc.load_model('models:/fer-tiny/1').predict(input_example(faces))\n"
        "np.save(sys.argv[3], out[list(data.class_names)].to_numpy())\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tiny_csv), store(workdir), str(workdir / "p.npy")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ensemble = run_evaluation(EvalConfig(checkpoint=["models:/fer-tiny/1"], tracking_uri=store(workdir), data=str(tiny_csv),
                                         protocol="standard", precision="32-true", cache_dir=str(workdir / "cache")))
    assert np.allclose(np.load(workdir / "p.npy"), ensemble.probabilities, atol=1e-4)


@pytest.mark.slow
def test_auto_precision_is_resolved_logged_and_printed_once(workdir, tiny_csv, monkeypatch, capsys):
    """``auto`` (the default) on a CPU with native bf16 measures; a benchmark faked at 1.1x gives float32."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda: ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"))
    monkeypatch.setattr(hardware, "onednn_isa_cap", lambda: "default")
    calls = []

    def measure(model, shape, mode="train", channels_last=True, steps=2):
        calls.append((tuple(shape), mode))
        return {"float32_s": 0.11, "bf16_s": 0.1, "speedup": 1.1, "gave_up": False}

    monkeypatch.setattr(precision, "measure", measure)
    args = fit_args(tiny_csv, "--epochs", "1", "--limit-train-batches", "1", "--precision", "auto", "--crop-size", "44")
    assert main(args) == 0 and main(args) == 0
    assert calls == [((32, 1, 44, 44), "train")]  # the second run found the first one's measurement
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("precision auto")]
    assert len(lines) == 2 and all(line.startswith("precision auto -> 32-true: bf16 autocast 1.10x") for line in lines)
    assert "measured now" in lines[0] and "cached measurement" in lines[1]
    runs = mlflow.MlflowClient(store(workdir)).search_runs(["1"])
    assert [(r.data.params["precision"], r.data.params["precision_resolved"]) for r in runs] == [("auto", "32-true")] * 2


@pytest.mark.slow
def test_params_record_the_settings(workdir, tiny_csv):
    main(fit_args(tiny_csv, "--optimizer", "sgd", "--lr", "0.02", "--epochs", "1", "--dropout", "0.2"))
    params = only_run(store(workdir)).data.params
    assert (params["optimizer"], params["lr"], params["batch_size"], params["model.dropout"]) == ("sgd", "0.02", "32", "0.2")


@pytest.mark.slow
def test_attention_run_logs_attention_maps(workdir, tiny_csv):
    main(fit_args(tiny_csv, "--arch", "attention", "--epochs", "1", "--limit-train-batches", "2"))
    run = only_run(store(workdir))
    assert "attention_maps.png" in {a.path for a in mlflow.MlflowClient(store(workdir)).list_artifacts(run.info.run_id)}


@pytest.mark.slow
def test_config_file_round_trip(workdir, tiny_csv):
    cfg = workdir / "run.yaml"
    cfg.write_text(yaml.safe_dump({"optimizer": "rmsprop", "epochs": 1, "label_smoothing": 0.1}))
    main(fit_args(tiny_csv, "--config", str(cfg), "--epochs", "1"))
    params = only_run(store(workdir)).data.params
    assert params["optimizer"] == "rmsprop" and params["label_smoothing"] == "0.1"


def test_help_lists_every_option_with_its_default(workdir, run_command):
    out = run_command("fit", "--help", cwd=workdir)
    assert out.returncode == 0
    for option in ("--arch", "--data", "--protocol", "--labels", "--optimizer", "--lr", "--weight-decay",
                   "--scheduler", "--batch-size", "--epochs", "--dropout-placement", "--augment",
                   "--label-smoothing", "--seed", "--accelerator", "--devices", "--strategy", "--num-nodes",
                   "--precision", "--limit-train-batches", "--fast-dev-run", "--experiment", "--run-name",
                   "--tracking-uri", "--resume", "--config"):
        assert option in out.stdout, option
    text = " ".join(out.stdout.split())
    assert "default: attention)" in text and "default: adam)" in text and "default: 64)" in text


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--arch", "vgg19"], "unknown architecture 'vgg19'"),
        (["--optimizer", "lbfgs"], "optimizer"),
        (["--batch-size", "many"], "batch_size"),
        (["--data", "/nonexistent/fer2013.csv"], "/nonexistent/fer2013.csv"),
        (["--tracking-uri", "sqlite:////proc/ferlight/mlflow.db"], "tracking"),
        (["--model-options", "{colour: 3}"], "colour"),
        (["--init-weights", "/nonexistent/model.pt"], "checkpoint not found: /nonexistent/model.pt"),
        (["--arch", "vgg11", "--init-weights", "default"], "--init-weights default: its model is fervgg_small"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workdir, tiny_csv, capsys, args, expected):
    with pytest.raises(SystemExit) as exit_:
        main(fit_args(tiny_csv, *args))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (workdir / "mlruns").exists() and not (workdir / "checkpoints").exists()


@pytest.fixture(scope="module")
def piped_fit(tmp_path_factory, tiny_csv):
    """``python -m ferlight.fit`` as a user starts it with ``> fit.log``: output not a terminal, progress bar
    on (the default), no OMP_WAIT_POLICY in the environment."""
    workdir = tmp_path_factory.mktemp("piped")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MLFLOW_TRACKING_URI")}
    args = fit_args(tiny_csv, "--epochs", "3", "--batch-size", "8", "--tracking-uri", store(workdir))
    out = subprocess.run([sys.executable, "-m", "ferlight.fit", *args],
                         cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return workdir, out


def test_the_fit_command_makes_openmp_threads_wait_passively(piped_fit):
    workdir, _ = piped_fit
    assert only_run(store(workdir)).data.tags["hardware.omp_wait_policy"] == "PASSIVE"


def test_output_that_is_not_a_terminal_gets_one_line_an_epoch_with_its_figures(piped_fit):
    _, out = piped_fit
    lines = out.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("train/loss" in line and "val/acc" in line for line in epochs)
    assert all(line.startswith(("epoch ", "MLflow run ")) for line in lines) and "\r" not in out.stdout, lines
    assert "it/s" not in out.stdout + out.stderr  # no progress bar in either stream


@pytest.mark.slow
def test_bad_input_from_the_shell_has_no_traceback(workdir, tiny_csv, run_command):
    out = run_command("fit", *fit_args(tiny_csv, "--arch", "vgg19"), cwd=workdir)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: unknown architecture 'vgg19'; available: {', '.join(list_models())}"
    ]


def _wait_for(pattern: str, root: Path, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(root.glob(pattern)):
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{pattern} never appeared")


@pytest.mark.slow
def test_sigkill_then_resume_auto_gives_one_complete_run(workdir, tiny_csv, run_command, start_command):
    args = fit_args(tiny_csv, "--epochs", "3", "--batch-size", "8", "--run-name", "killed")
    proc = start_command("fit", *args, cwd=workdir)
    _wait_for("checkpoints/*/*/checkpoints/last.ckpt", workdir, proc)
    time.sleep(1.0)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert only_run(store(workdir)).info.status == "RUNNING"

    out = run_command("fit", *args, "--resume", "auto", cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    run = only_run(store(workdir))
    client = mlflow.MlflowClient(store(workdir))
    assert run.info.status == "FINISHED"
    assert len({m.step for m in client.get_metric_history(run.info.run_id, "val/acc")}) == 3


@pytest.mark.slow
def test_ctrl_c_marks_the_run_killed(workdir, tiny_csv, start_command):
    proc = start_command("fit", *fit_args(tiny_csv, "--epochs", "50", "--batch-size", "8"), cwd=workdir)
    _wait_for("checkpoints/*/*/checkpoints/last.ckpt", workdir, proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    assert only_run(store(workdir)).info.status == "KILLED"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_makes_one_run_over_the_whole_test_set(workdir, tiny_csv, run_command):
    out = run_command("fit", *fit_args(tiny_csv, "--epochs", "1", "--strategy", "ddp", "--devices", "2", "--protocol", "standard"),
                  cwd=workdir, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run = only_run(store(workdir))
    assert run.data.params["world_size"] == "2"
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="classification_report.json",
                                                     tracking_uri=store(workdir), dst_path=str(workdir / "dl")))
    report = json.loads(local.read_text())
    assert report["micro avg"]["support"] == PER_CLASS["PrivateTest"] * 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_metrics_read_back_from_a_real_mlflow_server(workdir, tiny_csv):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{workdir}/server.db", "--artifacts-destination", str(workdir / "served"),
         "--workers", "1"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "mlflow server did not start"
                time.sleep(0.5)
        main(fit_args(tiny_csv, "--epochs", "1", "--tracking-uri", base, "--experiment", "served"))
        query = json.dumps({"experiment_ids": ["1"], "max_results": 5}).encode()
        request = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", data=query,
                                         headers={"Content-Type": "application/json"})
        runs = json.load(urllib.request.urlopen(request, timeout=10))["runs"]
        assert len(runs) == 1
        run_id = runs[0]["info"]["run_id"]
        got = json.load(urllib.request.urlopen(f"{base}/api/2.0/mlflow/runs/get?run_id={run_id}", timeout=10))
        metrics = {m["key"]: m["value"] for m in got["run"]["data"]["metrics"]}
        assert 0.0 <= metrics["test/acc"] <= 1.0 and "test/f1/happy" in metrics
        assert got["run"]["info"]["status"] == "FINISHED"
        assert not (workdir / "mlflow.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_trains(workdir, tiny_csv, recipe, capsys):
    """The recipes keep up with the options: each runs one batch of everything (on CPU here)."""
    assert main(["--config", str(recipe), "--data", str(tiny_csv), "--accelerator", "cpu", "--fast-dev-run", "true",
                 "--progress-bar", "false"]) == 0
    assert "test/acc=" in capsys.readouterr().out


def test_init_weights_starts_a_run_from_the_shipped_model_and_refuses_another_architecture():
    from ferlight.errors import ConfigError
    from ferlight.training.classifier import EmotionClassifier
    from ferlight.training.run import init_weights

    shipped = load_model(resolve_checkpoint())
    module = EmotionClassifier(arch=shipped.arch, model_options=shipped.model_options, class_names=shipped.class_names)
    assert not torch.equal(module.model.state_dict()["head.3.weight"], shipped.model.state_dict()["head.3.weight"])
    init_weights(module, "default")
    for name, value in shipped.model.state_dict().items():
        assert torch.equal(module.model.state_dict()[name], value), name
    other = EmotionClassifier(arch=shipped.arch, model_options=shipped.model_options, class_names=shipped.class_names[:6])
    with pytest.raises(ConfigError, match="6 classes"):
        init_weights(other, "default")
