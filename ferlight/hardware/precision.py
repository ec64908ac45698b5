"""``--precision auto``: the fastest correct precision on this machine, for training and inference.

The rule, for training (a Lightning precision) and inference (a torch dtype alike):

- a GPU that supports bfloat16 natively: ``bf16-mixed`` (``torch.bfloat16``);
- an older GPU: ``16-mixed`` (``torch.float16``);
- a CPU: ``bf16-mixed`` only where a micro-benchmark of the actual model at the actual input size
  (a few forward+backward steps for training, forward passes for inference) shows bf16 autocast at
  least :data:`MIN_SPEEDUP` times faster than float32; otherwise ``32-true``. Where the hardware
  says it already, no benchmark runs: an x86 CPU without AVX512-BF16 or AMX, or oneDNN capped
  below them (``ONEDNN_MAX_CPU_ISA=AVX2`` imitates an older CPU), has no fast bf16 (about ten
  times slower than float32 there), so it gets ``32-true``. The benchmark itself also stops bf16
  at its first clearly slower step.

A benchmark runs once per machine and setting: its result is cached in ``precision.json`` in the
ferlight cache folder (``$FERLIGHT_CACHE`` or ``~/.cache/ferlight``), keyed by CPU model, flags,
torch version, oneDNN's cap, threads, model (class and parameter count), input shape, memory
format and mode. The file is written atomically under a file lock, so concurrent runs (DDP ranks,
sweep workers) measure once. An explicit precision is never second-guessed.

This module needs torch alone (no Lightning, no training code), so inference can use it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from filelock import FileLock, Timeout
from torch import nn

from ferlight.hardware import machine as hardware
from ferlight.atomic import atomic_output
from ferlight.options import INFERENCE_PRECISIONS, check_choice

AUTO = "auto"
MIN_SPEEDUP = 1.2  # bf16 must be this much faster than float32 to be chosen on a CPU
CACHE_FILE = "precision.json"
CACHE_FORMAT = 1  # bump when the benchmark or the rule changes, so that old decisions are measured again
LOCK_TIMEOUT_S = 300
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # x86 without them: oneDNN emulates bf16, slower than float32
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that keep native bf16: AVX512_CORE_BF16, ..._AMX, AVX10_*, ALL
BF16_ISA_WORDS = ("BF16", "AMX", "FP16", "AVX10", "ALL", "DEFAULT")
TIMED_STEPS = 3  # per precision, after one warm-up step each
GIVE_UP_RATIO = 4.0  # a bf16 step this many times slower than float32's is clearly slower: stop measuring
INFER_MAX_BATCH = 256  # inference is measured on at most this many images (ten-crop batches are large)
DTYPES = {"32-true": torch.float32, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
PRECISIONS = {dtype: name for name, dtype in DTYPES.items()}


@dataclass
class Decision:
    """What ``auto`` chose, and why (``reason`` is the one line printed)."""

    precision: str  # Lightning's name: 32-true, bf16-mixed or 16-mixed
    reason: str
    measured: dict = field(default_factory=dict)  # float32_s / bf16_s per step, speedup; empty if not measured

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]

    def line(self) -> str:
        return f"precision auto -> {self.precision}: {self.reason}"


def resolve_training_precision(
    precision: str | None,
    accelerator: str,
    model: nn.Module,
    batch_size: int,
    crop_size: int,
    channels_last: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Decision:
    """The Lightning precision a run trains in; ``precision`` other than ``auto``/None wins as given."""
    if precision not in (None, AUTO):
        return Decision(precision, "set explicitly")
    device = _training_device(accelerator)
    shape = (batch_size, 1, crop_size, crop_size)
    return _decide(device, model, shape, "train", channels_last, cache_dir)


def resolve_inference_precision(
    model: nn.Module,
    device: str | torch.device,
    batch_shape: tuple[int, ...],
    channels_last: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> torch.dtype:
    """The autocast dtype for running ``model`` on ``device`` over batches of ``batch_shape``:
    ``torch.float32`` (no autocast), ``torch.bfloat16`` or (older GPUs) ``torch.float16``."""
    return inference_decision(model, device, batch_shape, channels_last, cache_dir).dtype


def inference_decision(
    model: nn.Module,
    device: str | torch.device,
    batch_shape: tuple[int, ...],
    channels_last: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    precision: str = AUTO,
) -> Decision:
    """:func:`resolve_inference_precision` with its reason; ``precision`` other than ``auto`` wins
    as given (32-true, bf16-mixed or 16-mixed; anything else is a ConfigError)."""
    if precision != AUTO:
        return Decision(check_choice("precision", precision, INFERENCE_PRECISIONS), "set explicitly")
    device = torch.device(device)
    if channels_last is None:
        channels_last = _is_channels_last(model)
    shape = (min(batch_shape[0], INFER_MAX_BATCH), *batch_shape[1:])
    return _decide(device, model, shape, "infer", channels_last, cache_dir)


def autocast(device: str | torch.device, dtype: torch.dtype):
    """``torch.autocast`` for ``dtype`` on ``device``; a no-op context for float32."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def _training_device(accelerator: str) -> torch.device:
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _decide(device, model, shape, mode, channels_last, cache_dir) -> Decision:
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return Decision("32-true", "no CUDA device available")
        name = torch.cuda.get_device_name(device)
        if _cuda_bf16():
            return Decision("bf16-mixed", f"{name} supports bfloat16")
        return Decision("16-mixed", f"{name} has no native bfloat16")
    if device.type != "cpu":
        return Decision("32-true", f"no mixed-precision rule for {device.type}")
    flags = hardware.cpu_flags()
    if _is_x86() and not NATIVE_BF16_FLAGS & set(flags):
        return Decision("32-true", f"the CPU has no native bfloat16 (flags: {' '.join(flags) or 'none'})")
    cap = hardware.onednn_isa_cap()
    if _is_x86() and cap != "default" and not any(word in cap.upper() for word in BF16_ISA_WORDS):
        return Decision("32-true", f"ONEDNN_MAX_CPU_ISA={cap} leaves oneDNN no native bfloat16")
    return _measured_decision(model, shape, mode, channels_last, cache_dir)


def _cuda_bf16() -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before 2.3 has no emulation to exclude
        return torch.cuda.is_bf16_supported()


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _cache_key(model: nn.Module, shape, mode: str, channels_last: bool) -> dict:
    return {
        "format": CACHE_FORMAT,
        "cpu": hardware.cpu_model(),
        "cpu_id": hardware.cpu_id(),
        "flags": " ".join(hardware.cpu_flags()),
        "arch": platform.machine(),
        "torch": torch.__version__,
        "onednn_max_cpu_isa": hardware.onednn_isa_cap(),
        "threads": torch.get_num_threads(),
        "model": f"{type(model).__name__}/{sum(p.numel() for p in model.parameters())}",
        "shape": list(shape),
        "channels_last": bool(channels_last),
        "mode": mode,
    }


def _cache_path(cache_dir) -> Path:
    from ferlight.data.cache import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / CACHE_FILE


def _read(path: Path) -> dict:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _measured_decision(model, shape, mode, channels_last, cache_dir) -> Decision:
    key = _cache_key(model, shape, mode, channels_last)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = _cache_path(cache_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    except (OSError, Timeout):  # an unwritable cache costs a measurement, nothing more
        return _from_measurement(measure(model, shape, mode, channels_last), cached=False)
    try:
        entry = _read(path).get(digest)
        if entry is not None and entry.get("key") == key:
            return _from_measurement(entry["measured"], cached=True)
        measured = measure(model, shape, mode, channels_last)
        entries = _read(path)
        entries[digest] = {"key": key, "measured": measured}
        try:
            with atomic_output(path) as tmp:
                tmp.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass
        return _from_measurement(measured, cached=False)
    finally:
        lock.release()


def _from_measurement(measured: dict, cached: bool) -> Decision:
    speedup = measured["speedup"]
    when = "cached measurement" if cached else "measured now"
    how = (f"bf16 autocast {speedup:.2f}x the speed of float32 for this model and batch "
           f"({measured['float32_s'] * 1e3:.0f} vs {measured['bf16_s'] * 1e3:.0f} ms a step")
    how += ", stopped early" if measured.get("gave_up") else ""
    how += f"; {when}, threshold {MIN_SPEEDUP}x)"
    return Decision("bf16-mixed" if speedup >= MIN_SPEEDUP else "32-true", how, measured)


def measure(model: nn.Module, shape, mode: str = "train", channels_last: bool = True, steps: int = TIMED_STEPS) -> dict:
    """Seconds per step of ``model`` on random ``shape`` inputs in float32 and in bf16 autocast, on CPU.

    ``train``: forward, cross-entropy, backward and an SGD step on a copy of the model (the model
    itself is untouched); ``infer``: forward under ``inference_mode``. One warm-up step each, then
    ``steps`` alternating timed steps; the fastest step of each counts (robust to load from other
    processes). bf16 stops as soon as it is clearly slower (a step :data:`GIVE_UP_RATIO` times
    float32's), so a CPU without native bf16 costs one slow step, not several.
    """
    net = copy.deepcopy(model).cpu().float()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    net.train(mode == "train")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).contiguous(memory_format=memory_format)
    opt = torch.optim.SGD(net.parameters(), lr=0.0) if mode == "train" else None
    classes = None

    def step(dtype) -> float:
        nonlocal classes
        start = time.perf_counter()
        if opt is None:
            with torch.inference_mode(), autocast("cpu", dtype):
                net(x)
        else:
            with autocast("cpu", dtype):
                logits = net(x)
            if classes is None:
                classes = torch.randint(logits.shape[-1], (shape[0],), generator=generator)
            loss = F.cross_entropy(logits.float(), classes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    fp32 = [step(torch.float32)]  # warm-up
    bf16 = [step(torch.bfloat16)]  # warm-up (oneDNN creates its primitives)
    gave_up = bf16[0] > GIVE_UP_RATIO * 2 * fp32[0]
    fp32_times, bf16_times = [], []
    for _ in range(steps):
        fp32_times.append(step(torch.float32))
        if gave_up:
            continue
        bf16_times.append(step(torch.bfloat16))
        gave_up = bf16_times[-1] > GIVE_UP_RATIO * min(fp32_times)
    fp32_s = min(fp32_times)
    bf16_s = min(bf16_times) if bf16_times else bf16[0]
    return {"float32_s": fp32_s, "bf16_s": bf16_s, "speedup": fp32_s / bf16_s, "gave_up": bool(gave_up),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _is_channels_last(model: nn.Module) -> bool:
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return bool(weight is not None and weight.is_contiguous(memory_format=torch.channels_last)
                and not weight.is_contiguous())


def as_dict(decision: Decision) -> dict:
    return asdict(decision)
