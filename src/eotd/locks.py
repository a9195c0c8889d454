"""One study per tier at a time: a lock per run name, held by `python -m eotd.study` for the whole study and by a
stage notebook run from JupyterLab (notebook.start to notebook.finish), so two runs never write the same
results/<name>/ and caches at once.

The lock is an flock (filelock.FileLock) on <cache>/locks/<name>.lock: the kernel drops it when its process dies, so
a killed run never leaves a stale lock. The holder's pid and command go to a side file <name>.lock.holder (json) so
the refusal can name them. The study sets EOTD_LOCK_HOLDER=<its pid> for the notebook kernels it starts: a stage
run by the study that holds the lock proceeds under it.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import filelock

from eotd import paths

HOLDER_ENV = "EOTD_LOCK_HOLDER"


class TierBusy(SystemExit):
    """Another process holds the tier's lock (a SystemExit: the command line prints it and exits 1)."""

    def __init__(self, name: str, holder: dict | None):
        self.name, self.holder = name, holder or {}
        self.pid = self.holder.get("pid")
        super().__init__(message(name, self.holder))


def lock_file(name: str) -> Path:
    return paths.cache_dir("locks") / f"{name}.lock"


def holder(name: str) -> dict:
    """What the side file says about the last process that took `name`'s lock ({} when none did); it may be stale:
    only the flock itself says whether it is held."""
    try:
        return json.loads(lock_file(name).with_suffix(".lock.holder").read_text())
    except (OSError, ValueError):
        return {}


def message(name: str, who: dict) -> str:
    pid = who.get("pid", "unknown")
    what = f" ({who['command']}, since {who['since']})" if who.get("command") else ""
    return (f"[eotd] tier {name!r} is in use by pid {pid}{what}: another study or notebook of it would write the same "
            f"results/{name}/ and caches. Wait for it to finish (or pass --wait to start when it does), or stop it "
            f"(kill {pid}; a notebook: shut down its kernel). Lock: {paths.relative(lock_file(name))}")


class TierLock:
    """The lock of one run name; `with TierLock(name).hold(): ...` or acquire()/release()."""

    def __init__(self, name: str):
        self.name = name
        self.path = lock_file(name)
        self._lock = filelock.FileLock(self.path, thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self, wait: bool = False) -> TierLock:
        """Take the lock, or raise TierBusy at once (wait=False), or wait for the holder to finish (wait=True)."""
        if self.held:
            return self
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            if not wait:
                raise TierBusy(self.name, holder(self.name)) from None
            print(message(self.name, holder(self.name)).split(": another")[0] + ": waiting (--wait)", flush=True)
            self._lock.acquire(timeout=-1)
        who = {"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) or "python",
               "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        side = self.path.with_suffix(".lock.holder")
        tmp = side.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(who))
        tmp.replace(side)
        return self

    def release(self) -> None:
        if self.held:
            self._lock.release(force=True)

    def hold(self, wait: bool = False):
        return _Held(self, wait)


class _Held:
    def __init__(self, lock: TierLock, wait: bool):
        self.lock, self.wait = lock, wait

    def __enter__(self) -> TierLock:
        return self.lock.acquire(self.wait)

    def __exit__(self, *exc) -> None:
        self.lock.release()


_stage_locks: dict[str, TierLock] = {}


def for_stage(name: str) -> TierLock | None:
    """notebook.start's lock: taken for a stage run from JupyterLab (released by release_stage, or when the kernel
    ends), not when the study that holds the lock ran this kernel (EOTD_LOCK_HOLDER names the holder's pid)."""
    lock = _stage_locks.get(name) or TierLock(name)
    try:
        lock.acquire()
    except TierBusy as busy:
        if busy.pid is not None and os.environ.get(HOLDER_ENV) == str(busy.pid):
            return None  # this kernel runs a stage of the study that holds the lock
        raise
    _stage_locks[name] = lock
    return lock


def release_stage(name: str) -> None:
    lock = _stage_locks.pop(name, None)
    if lock is not None:
        lock.release()


def _hold_for_tests(name: str, seconds: float) -> None:  # pragma: no cover - run in a subprocess by the tests
    with TierLock(name).hold():
        print("held", flush=True)
        time.sleep(seconds)


if __name__ == "__main__":  # python -m eotd.locks NAME SECONDS: hold a tier's lock (tests, or to pause a tier)
    _hold_for_tests(sys.argv[1], float(sys.argv[2]))
