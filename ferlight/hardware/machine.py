"""What machine a figure was measured on: CPU model and flags, cores, threads, oneDNN's cap, GPU.

:func:`tags` gives MLflow-tag-ready strings (``hardware.*``) that every fit run records;
:func:`summary` gives the one line that benchmarks print beside their tables. Reading the machine
changes nothing (no threads set, no CUDA context beyond what ``torch.cuda`` queries create).
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

# The flags that decide CPU speed for ferlight's models: AVX2 (every x86 CPU of the last decade),
# AVX-512, native bfloat16 dot products (AVX512-BF16) and Intel's matrix units (AMX).
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "bf16")
# oneDNN reads its ISA cap from these at start (ONEDNN_ is current, DNNL_ the older spelling).
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
CPUINFO = "/proc/cpuinfo"


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's ``key: value`` lines of /proc/cpuinfo (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    if info:
                        break
                    continue
                key, _, value = line.partition(":")
                info.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return info


def cpu_model() -> str:
    """The CPU's model name, e.g. ``Intel(R) Xeon(R) Processor`` (platform's guess without /proc)."""
    info = _cpuinfo()
    name = info.get("model name") or info.get("cpu model") or info.get("hardware")
    return name or platform.processor() or platform.machine() or "unknown"


def cpu_id() -> str:
    """Vendor, family and model numbers (what tells CPU generations apart when the name is generic)."""
    info = _cpuinfo()
    if "cpu family" not in info:
        return platform.machine() or "unknown"
    return f"{info.get('vendor_id', '?')} family {info['cpu family']} model {info.get('model', '?')}"


def cpu_flags() -> tuple[str, ...]:
    """The relevant flags (:data:`RELEVANT_FLAGS`) the CPU reports, in that order."""
    info = _cpuinfo()
    present = set((info.get("flags") or info.get("features") or "").split())
    return tuple(flag for flag in RELEVANT_FLAGS if flag in present)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def onednn_isa_cap() -> str:
    """``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) when set, else ``default``."""
    for name in ISA_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return "default"


def gpu() -> tuple[str, str] | None:
    """(name, CUDA version) of the first CUDA device, or None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0), str(torch.version.cuda or torch.version.hip or "unknown")


def tags() -> dict[str, str]:
    """The machine as MLflow tags: ``hardware.cpu``, ``hardware.cpu_flags``, ``hardware.cores`` ..."""
    import torch

    found = {
        "hardware.cpu": cpu_model(),
        "hardware.cpu_id": cpu_id(),
        "hardware.cpu_flags": " ".join(cpu_flags()) or "none",
        "hardware.cores": str(usable_cores()),
        "hardware.torch_threads": str(torch.get_num_threads()),
        "hardware.onednn_max_cpu_isa": onednn_isa_cap(),
        "hardware.omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "hardware.torch": torch.__version__,
        "hardware.arch": platform.machine() or "unknown",
    }
    device = gpu()
    found["hardware.gpu"] = device[0] if device else "none"
    if device:
        found["hardware.cuda"] = device[1]
    return found


def prefer_passive_openmp() -> bool:
    """Make OpenMP threads sleep rather than spin while they wait (``OMP_WAIT_POLICY=PASSIVE``),
    unless the user chose a policy. Call it before torch is imported (OpenMP reads it then);
    returns whether it can still take effect.

    Why: on a machine whose cores other processes also use, spinning threads fight them for the
    cores. Measured on the 2-core development box with two other jobs running (load about 4):
    one fervgg_small training step at batch 16 took 2.1 s with torch's default (spinning) and 0.16 s
    passive (0.24 s with one thread).
    """
    import sys

    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True


def summary() -> str:
    """One line for a benchmark table, e.g. ``Intel(R) Xeon(R) Processor (GenuineIntel family 6
    model 207), 2 cores, 2 torch threads, flags avx2 avx512f ..., torch 2.13.0+cpu``."""
    t = tags()
    line = (f"{t['hardware.cpu']} ({t['hardware.cpu_id']}), {t['hardware.cores']} cores, "
            f"{t['hardware.torch_threads']} torch threads, flags {t['hardware.cpu_flags']}, torch {t['hardware.torch']}")
    if t["hardware.onednn_max_cpu_isa"] != "default":
        line += f", ONEDNN_MAX_CPU_ISA={t['hardware.onednn_max_cpu_isa']}"
    if t["hardware.gpu"] != "none":
        line = f"{t['hardware.gpu']} (CUDA {t['hardware.cuda']}); host {line}"
    return line
