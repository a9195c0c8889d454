import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eotd import machine


def _resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_heap_hands_freed_pages_of_a_fragmented_heap_back():
    """Tensors freed between live ones stay resident until the heap is trimmed, as a trained student's would when the
    next one loads."""
    blocks = [torch.ones(16_384) for _ in range(8_000)]  # 64 KiB each, under the mmap threshold: on the heap
    kept = blocks[::100]  # live blocks all along the heap: free() alone cannot shrink it
    del blocks
    before = _resident_mb()
    assert machine.trim_heap() is True
    assert before - _resident_mb() > 200, "malloc_trim handed back less than 200 of the ~500 MB freed"
    assert len(kept) == 80


def _running(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()  # a zombie has ended, only not yet reaped
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_worker_that_asked_to_die_with_its_parent_ends_when_the_parent_is_killed():
    worker = ("import time; from eotd import machine; assert machine.die_with_parent(); print('ready', flush=True); "
              "time.sleep(120)")
    parent = ("import subprocess, sys, time; w = subprocess.Popen([sys.executable, '-c', sys.argv[1]], "
              "stdout=subprocess.PIPE, text=True); w.stdout.readline(); print(w.pid, flush=True); time.sleep(120)")
    middle = subprocess.Popen([sys.executable, "-c", parent, worker], stdout=subprocess.PIPE, text=True)
    pid = int(middle.stdout.readline())
    assert _running(pid)
    middle.kill()
    middle.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid)
