import sys
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
