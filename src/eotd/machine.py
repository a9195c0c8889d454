"""The machine a stage runs on, in one place: whether it computes in bf16, and a description for run.json."""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_bf16() -> bool:
    """Native bf16 on this CPU (avx512_bf16 or AMX); elsewhere bf16 is emulated and about 100x slower."""
    flags = _cpuinfo()
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def bf16_supported() -> bool:
    """bf16 pays off here: CUDA with bf16, or a CPU with native bf16."""
    import torch  # here, so that `python -m eotd.study` starts (and a refused one exits) without loading torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_bf16()


def describe() -> dict:
    """CPU model, cores, bf16 support and the GPU (None without one): what run.json records for a stage's timing."""
    import torch

    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "bf16": bf16_supported(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
