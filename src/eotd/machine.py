"""The machine a stage runs on, in one place: whether it computes in bf16, a description for run.json, and handing
freed memory back to it."""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import signal
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


@functools.cache
def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the OS (glibc's malloc_trim; False where there is no glibc). A process that
    frees one model's tensors and allocates the next one's keeps the freed pages resident otherwise, and fragments
    them, so its memory creeps up from run to run."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask Linux to send this process SIGTERM when its parent ends, so that a worker never outlives a stopped kernel
    (False where there is no glibc)."""
    libc = _glibc()
    return libc is not None and libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0
