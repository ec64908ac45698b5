"""``--precision auto``: the rule, the cached micro-benchmark, explicit choices, and a CPU without
native bf16 (imitated with ``ONEDNN_MAX_CPU_ISA=AVX2`` in a child process, as oneDNN reads it at start)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from ferlight.hardware import machine as hardware
from ferlight.hardware import precision
from ferlight.models import create_model


@pytest.fixture
def tiny_model():
    return create_model("fervgg_small", num_classes=7, width=4)


@pytest.fixture
def native_bf16_cpu(monkeypatch):
    """Pretend to be a CPU with native bf16 and no oneDNN cap, so that ``auto`` has to measure."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda: ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"))
    monkeypatch.setattr(hardware, "onednn_isa_cap", lambda: "default")


def fake_measure(speedup: float, calls: list):
    def measure(model, shape, mode="train", channels_last=True, steps=precision.TIMED_STEPS):
        calls.append((tuple(shape), mode))
        return {"float32_s": 0.2, "bf16_s": 0.2 / speedup, "speedup": speedup, "gave_up": False}
    return measure


def test_an_explicit_precision_wins_without_measuring(tiny_model, monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "measure", lambda *a, **k: pytest.fail("an explicit precision was measured"))
    for given in ("32-true", "bf16-mixed", "16-mixed"):
        decision = precision.resolve_training_precision(given, "cpu", tiny_model, 8, 40, cache_dir=tmp_path)
        assert (decision.precision, decision.reason) == (given, "set explicitly")
    assert not (tmp_path / precision.CACHE_FILE).exists()


@pytest.mark.parametrize("speedup,expected", [(2.0, "bf16-mixed"), (1.2, "bf16-mixed"), (1.1, "32-true"), (0.1, "32-true")])
def test_auto_on_a_bf16_cpu_follows_the_measured_speedup(tiny_model, native_bf16_cpu, monkeypatch, tmp_path, speedup, expected):
    calls = []
    monkeypatch.setattr(precision, "measure", fake_measure(speedup, calls))
    decision = precision.resolve_training_precision("auto", "cpu", tiny_model, 8, 40, cache_dir=tmp_path)
    assert decision.precision == expected and len(calls) == 1
    assert decision.line().startswith(f"precision auto -> {expected}: bf16 autocast {speedup:.2f}x")


def test_the_benchmark_runs_once_per_setting_and_is_cached(tiny_model, native_bf16_cpu, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(precision, "measure", fake_measure(1.5, calls))
    first = precision.resolve_training_precision(None, "cpu", tiny_model, 8, 40, cache_dir=tmp_path)
    again = precision.resolve_training_precision("auto", "cpu", tiny_model, 8, 40, cache_dir=tmp_path)
    other_batch = precision.resolve_training_precision("auto", "cpu", tiny_model, 16, 40, cache_dir=tmp_path)
    dtype = precision.resolve_inference_precision(tiny_model, "cpu", (8, 1, 40, 40), cache_dir=tmp_path)
    assert first.precision == again.precision == other_batch.precision == "bf16-mixed" and dtype == torch.bfloat16
    assert calls == [((8, 1, 40, 40), "train"), ((16, 1, 40, 40), "train"), ((8, 1, 40, 40), "infer")]
    assert "measured now" in first.reason and "cached measurement" in again.reason
    entries = json.loads((tmp_path / precision.CACHE_FILE).read_text())
    keys = [entry["key"] for entry in entries.values()]
    assert {k["mode"] for k in keys} == {"train", "infer"} and len(keys) == 3
    assert all(k["cpu"] == hardware.cpu_model() and k["torch"] == torch.__version__ for k in keys)


def test_a_cpu_without_native_bf16_gets_float32_without_measuring(tiny_model, monkeypatch, tmp_path):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the flag rule is for x86 CPUs")
    monkeypatch.setattr(precision, "measure", lambda *a, **k: pytest.fail("measured on a CPU without bf16"))
    monkeypatch.setattr(hardware, "cpu_flags", lambda: ("avx2",))  # an AMD EPYC of the issue: AVX2 alone
    assert precision.resolve_training_precision("auto", "cpu", tiny_model, 8, 40, cache_dir=tmp_path).precision == "32-true"
    assert precision.resolve_inference_precision(tiny_model, "cpu", (8, 1, 40, 40), cache_dir=tmp_path) == torch.float32


def test_the_benchmark_measures_both_precisions(tiny_model):
    measured = precision.measure(tiny_model, (4, 1, 40, 40), "train", steps=1)
    assert measured["float32_s"] > 0 and measured["bf16_s"] > 0
    assert measured["speedup"] == pytest.approx(measured["float32_s"] / measured["bf16_s"])
    assert all(not p.grad_fn and p.grad is None for p in tiny_model.parameters())  # the model itself untouched


AVX2_CHILD = """
import json, torch
from ferlight.hardware import precision
from ferlight.models import create_model
model = create_model("fervgg_small", num_classes=7, width=8)
train = precision.resolve_training_precision("auto", "cpu", model, 16, 40)
infer = precision.resolve_inference_precision(model, "cpu", (16, 1, 40, 40))
print(json.dumps({"train": train.precision, "reason": train.reason, "infer": str(infer), "measured": train.measured}))
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN's ISA cap is x86")
def test_auto_never_picks_bf16_on_a_cpu_without_native_bf16(tmp_path):
    """ONEDNN_MAX_CPU_ISA=AVX2 imitates an AVX2-only CPU (bf16 about ten times slower there)."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "FERLIGHT_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", AVX2_CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["train"], got["infer"]) == ("32-true", "torch.float32"), got
    # decided from what oneDNN reports, without a benchmark (a timed comparison of a tiny model
    # on a shared machine is noise: it once measured bf16 1.21x faster under the cap)
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in got["reason"] and got["measured"] == {}, got
