"""One study per tier at a time (eotd.locks), with real processes: a holder that takes the tier's lock through the
API and sleeps stands in for a running study, so no test here runs a stage."""
import os
import signal
import subprocess
import sys
import time

import pytest

from eotd import locks, notebook, paths

TIER = "smoke"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A private cache (where the lock lives) and results folder; a data folder that does not exist, so a study that
    gets past the lock stops at once in its preflight instead of running stages."""
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EOTD_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.delenv(locks.HOLDER_ENV, raising=False)
    return dict(os.environ)


def hold(env) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-m", "eotd.locks", TIER, "120"], env=env, cwd=paths.ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def kill(holder: subprocess.Popen) -> None:
    os.kill(holder.pid, signal.SIGKILL)  # no clean-up runs: the kernel alone drops the flock
    holder.wait()


def study(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eotd.study", "params/smoke.yaml", *args], env=env, cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=timeout)


def got_past_the_lock(done: subprocess.CompletedProcess) -> bool:
    return "EOTD_DATA_DIR" in done.stderr and "not a folder" in done.stderr and "in use by" not in done.stderr


def test_a_second_study_of_a_tier_refuses_at_once_naming_the_holder_and_a_killed_holder_never_blocks(env):
    holder = hold(env)
    try:
        start = time.monotonic()
        second = study(env)
        assert time.monotonic() - start < 5
        assert second.returncode != 0
        assert f"tier {TIER!r} is in use by pid {holder.pid}" in second.stderr
        assert "--wait" in second.stderr and f"kill {holder.pid}" in second.stderr
        assert not got_past_the_lock(second)
    finally:
        kill(holder)
    third = study(env)
    assert third.returncode != 0 and got_past_the_lock(third), third.stderr  # the lock was free: preflight ran
    lock = locks.TierLock(TIER).acquire()  # and nothing is left holding it
    assert lock.held
    lock.release()


def test_wait_queues_behind_the_holder(env):
    holder = hold(env)
    waiting = subprocess.Popen([sys.executable, "-m", "eotd.study", "params/smoke.yaml", "--wait"], env=env,
                               cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert f"in use by pid {holder.pid}" in waiting.stdout.readline()
        time.sleep(1)
        assert waiting.poll() is None
    finally:
        kill(holder)
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode != 0 and "not a folder" in err and "in use by" not in err


def test_a_stage_from_jupyterlab_takes_the_lock_unless_its_study_holds_it(env, monkeypatch):
    monkeypatch.setattr(notebook.console, "quiet_libraries", lambda: None)
    holder = hold(env)
    try:
        with pytest.raises(locks.TierBusy, match=f"in use by pid {holder.pid}"):
            notebook.start(TIER)  # a JupyterLab stage while the batch study runs
        monkeypatch.setenv(locks.HOLDER_ENV, str(holder.pid))  # what study.run sets for the kernels it starts
        p, out = notebook.start(TIER)
        assert p.name == TIER and TIER not in locks._stage_locks
    finally:
        kill(holder)
    monkeypatch.delenv(locks.HOLDER_ENV)
    try:
        notebook.start(TIER)
        notebook.start(TIER)  # the stage re-run in the same kernel keeps its one lock
        refused = study(env)
        assert refused.returncode != 0 and f"in use by pid {os.getpid()}" in refused.stderr
    finally:
        locks.release_stage(TIER)  # what notebook.finish does
    assert not locks._stage_locks
    assert got_past_the_lock(study(env))


def test_the_kernels_a_study_starts_run_their_stages_under_its_lock(env, monkeypatch, tmp_path):
    """study.run holds the lock and starts a real kernel (papermill): the stage's notebook.start proceeds, while a
    stage started from elsewhere (here: this process) would have been refused."""
    import nbformat

    from eotd import study

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("\n".join([
        "import os",
        "from eotd import locks, notebook",
        "notebook.console.quiet_libraries = lambda: None",
        f"p, out = notebook.start({TIER!r})",
        f"assert {TIER!r} not in locks._stage_locks, 'took a second lock'",
        f"assert locks.holder({TIER!r})['pid'] == int(os.environ[locks.HOLDER_ENV]) == {os.getpid()}",
    ]))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    stage = tmp_path / "99_lock.ipynb"
    nbformat.write(nb, stage)
    monkeypatch.setattr(study, "notebooks", lambda: [stage])
    monkeypatch.setattr(study, "preflight", lambda p: None)
    out = study.run("params/smoke.yaml", stages=["99"])
    assert (out / stage.name).exists() and locks.HOLDER_ENV not in os.environ
    lock = locks.TierLock(TIER).acquire()  # released when the study ended
    assert lock.held
    lock.release()
