"""A pool of pre-started sandbox workers that run PoT programs and solve EoT systems out of the caller's process.

Each worker (eotd._sandbox_worker) is a warmed-up `python -I` with an empty environment that forks one locked-down
child per job; the pool keeps one worker per core busy and replaces any worker that dies or stops answering. The
parent makes each worker's folder and removes it when the worker goes (also one left by a killed earlier process).
`describe()` says which isolation layers are active on this machine.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import re
import select
import shutil
import subprocess
import tempfile
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
    thought: str  # "pot" or "eot"
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


_PREFIX = "eotd-sandbox-"
_LINE_CAP = 1 << 20  # the worker bounds each child's result far below this


def sweep_stale_folders(tmp: str | None = None) -> int:
    """Remove worker folders whose creating process is gone (it was killed before it could clean up)."""
    removed = 0
    base = Path(tmp or tempfile.gettempdir())
    for folder in base.glob(f"{_PREFIX}*"):
        match = re.match(rf"{_PREFIX}(\d+)-", folder.name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # its process still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


class _Worker:
    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, self.root], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={}, cwd="/", text=True, bufsize=1,
        )
        self.ready = False

    def _readline(self, timeout: float) -> str | None:
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        return self.proc.stdout.readline(_LINE_CAP) or None

    def run(self, job: Job) -> Outcome:
        return _decode(self.ask(vars(job), job.timeout + _GRACE))

    def ask(self, message: dict, timeout: float) -> dict:
        if not self.ready:
            if self._readline(_START_TIMEOUT) != "ready\n":
                raise RuntimeError("the sandbox worker did not start; run `python -m eotd._sandbox_worker` to see why")
            self.ready = True
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        line = self._readline(timeout)
        if line is None or not line.endswith("\n"):
            raise RuntimeError("the sandbox worker stopped answering")
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class Sandbox:
    """Runs jobs in parallel on `workers` sandbox processes and returns outcomes in input order."""

    def __init__(self, workers: int | None = None) -> None:
        sweep_stale_folders()
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

    def describe(self) -> dict[str, str]:
        """The isolation layers active in this pool's workers: layer -> what it does, or why it is off."""
        worker = self._idle.get()
        try:
            return worker.ask({"describe": True}, _START_TIMEOUT)["layers"]
        finally:
            self._idle.put(worker)

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


def describe() -> dict[str, str]:
    """Which sandbox layers are active here (as root and as an ordinary user they differ): layer -> state."""
    return shared_sandbox().describe()
