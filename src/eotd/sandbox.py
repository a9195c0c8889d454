"""A pool of pre-started sandbox workers that run PoT programs and solve EoT systems out of the caller's process.

Each worker (eotd._sandbox_worker) is a warmed-up `python -I` with an empty environment that forks one locked-down
child per job; the pool keeps one worker per core busy and replaces any worker that dies or stops answering.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

from eotd.answers import Number

_SRC = str(Path(__file__).resolve().parents[1])
_BOOT = f"import sys; sys.path.insert(0, {_SRC!r}); from eotd._sandbox_worker import main; main()"
_START_TIMEOUT = 120.0  # importing sympy on a loaded 2-core machine can take a while
_GRACE = 10.0  # beyond a job's own timeout, before the worker itself is considered hung


@dataclass(frozen=True)
class Job:
    kind: str  # "pot" or "eot"
    source: str
    timeout: float = 5.0
    memory_mb: int = 512


@dataclass(frozen=True)
class Outcome:
    answer: Number | None
    reason: str
    detail: str = ""


def _decode(result: dict) -> Outcome:
    if result.get("reason") != "ok":
        return Outcome(None, result.get("reason", "runtime_error"), result.get("detail", ""))
    text = result["value"]
    if result["type"] == "float":
        return Outcome(float(text), "ok")
    return Outcome(Fraction(text) if "/" in text else int(text), "ok")


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={}, cwd="/", text=True, bufsize=1,
        )
        self.ready = False

    def _readline(self, timeout: float) -> str | None:
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        return self.proc.stdout.readline() or None

    def run(self, job: Job) -> Outcome:
        if not self.ready:
            if self._readline(_START_TIMEOUT) != "ready\n":
                raise RuntimeError("the sandbox worker did not start; run `python -m eotd._sandbox_worker` to see why")
            self.ready = True
        self.proc.stdin.write(json.dumps(vars(job)) + "\n")
        self.proc.stdin.flush()
        line = self._readline(job.timeout + _GRACE)
        if line is None:
            raise RuntimeError("the sandbox worker stopped answering")
        return _decode(json.loads(line))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Sandbox:
    """Runs jobs in parallel on `workers` sandbox processes and returns outcomes in input order."""

    def __init__(self, workers: int | None = None) -> None:
        self.size = workers or os.cpu_count() or 1
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for _ in range(self.size):
            self._idle.put(_Worker())
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="eotd-sandbox")

    def _run_one(self, job: Job) -> Outcome:
        worker = self._idle.get()
        try:
            return worker.run(job)
        except (RuntimeError, OSError, ValueError) as exc:
            worker.close()
            worker = _Worker()
            return Outcome(None, "runtime_error", f"sandbox worker failed: {exc}")
        finally:
            self._idle.put(worker)

    def imap(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Outcomes in input order, as they complete (for progress bars)."""
        return self._executor.map(self._run_one, jobs)

    def run(self, jobs: Iterable[Job]) -> list[Outcome]:
        return list(self.imap(jobs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        while not self._idle.empty():
            self._idle.get().close()


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def shared_sandbox() -> Sandbox:
    """The process-wide pool, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox()
            atexit.register(_shared.close)
        return _shared
