"""JupyterLab, the third way the study is run (besides `make study` and papermill): a real `jupyter lab` server from
the project's environment, a real headless Chromium that opens the evaluation stage, switches it to the smoke tier by
editing its parameters cell and runs every cell from the Run menu. The page must show no error, live progress bars
(widgets, not text), and the stage's summary; and the files the stage wrote must equal those of the papermill run of
the same stage on the same tier.

It reads the session's papermill run of the smoke study (conftest's smoke_study): 04 in JupyterLab needs the students
and data that run left in its cache, where it also finds the run's generations (the lab run scores and reports them,
it does not generate again). Deselect with `-m "not browser"`. Skipped without chromium/chromedriver unless EOTD_REQUIRE_BROWSER=1.
"""
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from browser import (artifact, chromium, lab_cell_text, lab_menu, lab_open, lab_outputs, lab_replace_line,
                     lab_screenshot, lab_wait_until_run)

from eotd import locks, paths

pytestmark = pytest.mark.browser

TIER = "smoke"
STAGE = "04_evaluation.ipynb"
RUN_TIMEOUT = 900  # seconds for Run All Cells of the smoke tier's stage 04 (15 s here, generations cached)
# JupyterLab's user settings for the test's server, in its own settings folder (the user's are not read).
SETTINGS = {
    # The edited notebook must never be written over notebooks/: no autosave (the test never saves).
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Every cell stays in the page (no virtual scrolling, no blank space past the end), for the checks below and a
    # screenshot of the whole notebook.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "scrollPastEnd": False},
    # Offline: no "get notified about Jupyter news?" toast over the notebook, no update check.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
STDERR = "application/vnd.jupyter.stderr"  # streams written to stderr and error tracebacks, as JupyterLab renders them


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@contextlib.contextmanager
def jupyterlab(folder: Path, env: dict, timeout: float = 120):
    """`python -m jupyterlab` on 127.0.0.1 (a free port, a token, no browser, root allowed) serving notebooks/ with
    `env`; its settings, workspaces, checkpoints, runtime and config files in `folder`. Yields (base URL, token, log).
    Stopped whatever happens: its kernels shut down through the API, then its process group terminated."""
    for plugin, values in SETTINGS.items():
        settings = folder / "settings" / f"{plugin}.jupyterlab-settings"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    env = {**env, "JUPYTER_CONFIG_DIR": str(folder / "config"), "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
           "IPYTHONDIR": str(folder / "ipython")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={paths.NOTEBOOKS}", f"--LabApp.user_settings_dir={folder / 'settings'}",
               f"--LabApp.workspaces_dir={folder / 'workspaces'}",
               f"--FileCheckpoints.checkpoint_dir={folder / 'checkpoints'}"]  # not notebooks/.ipynb_checkpoints
    log = folder / "jupyterlab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=paths.NOTEBOOKS, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert server.poll() is None, f"jupyter lab exited ({server.returncode}):\n{log.read_text()[-3000:]}"
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                assert time.monotonic() < deadline, f"jupyter lab not up after {timeout}s:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        yield base, token, log
    finally:
        with contextlib.suppress(OSError, ValueError):  # the kernels run in sessions of their own
            for kernel in _api(base, token, "/api/kernels"):
                _api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_evaluation_stage_run_from_jupyterlab_equals_the_papermill_run(smoke_study, tmp_path, monkeypatch):
    driver = chromium()  # skips (or fails under EOTD_REQUIRE_BROWSER=1) before the slow part
    screenshot = artifact(f"jupyterlab-{Path(STAGE).stem}-{TIER}.png")  # before EOTD_CACHE_DIR points into tmp_path
    try:
        expected, root = smoke_study
        lab_results = tmp_path / "lab"
        monkeypatch.setenv("EOTD_CACHE_DIR", str(root / "cache"))  # the papermill run's cache (and tier lock)
        monkeypatch.delenv("EOTD_PROGRESS", raising=False)  # the lab's kernel picks live bars by itself
        monkeypatch.delenv(locks.HOLDER_ENV, raising=False)

        notebook = paths.NOTEBOOKS / STAGE
        before = digest(notebook)
        had_checkpoints = (paths.NOTEBOOKS / ".ipynb_checkpoints").exists()
        env = {**os.environ, "EOTD_RESULTS_DIR": str(lab_results)}  # EOTD_DATA_DIR passed through
        with jupyterlab(tmp_path / "jupyterlab", env) as (base, token, log):
            try:
                lab_open(driver, f"{base}/lab/tree/{STAGE}?token={token}")
                cell = lab_replace_line(driver, 0, 'name = "default"', f'name = "{TIER}"')
                assert f'\nname = "{TIER}"\n' in cell and 'name = "default"' not in cell, cell
                lab_menu(driver, "Run", "Run All Cells")
                started = time.monotonic()
                prompts = lab_wait_until_run(driver, RUN_TIMEOUT)
                seconds = time.monotonic() - started
                outputs = lab_outputs(driver)
                console = driver.get_log("browser")
                assert lab_cell_text(driver, 0) == cell  # nothing else typed into the notebook
            finally:
                with contextlib.suppress(Exception):  # a picture of the page however the run ended
                    lab_screenshot(driver, screenshot)
    finally:
        driver.quit()

    stderr = [o["text"] for o in outputs if o["mime"] == STDERR]
    assert stderr == [], f"error output in the page:\n{stderr[0][-3000:]}\n(jupyter lab log: {log})"
    assert all(p not in ("[ ]:", "[*]:") for p in prompts), prompts  # every cell ran (Run All stops at an error)
    assert outputs[0]["text"].startswith(f"Run {TIER}: settings from params/{TIER}.yaml"), outputs[0]["text"]
    # live progress bars: tqdm.auto drew ipywidgets (a Jupyter server's kernel is in "bars" mode), no text bars
    assert [o for o in outputs if o["progress"]], [(o["mime"], o["classes"]) for o in outputs]
    text_bars = [o["text"] for o in outputs if not o["widget"] and ("it/s]" in o["text"] or "%|" in o["text"])]
    assert text_bars == [], text_bars
    assert not [o["text"] for o in outputs if "Progress(" in o["text"] or "Loading widget" in o["text"]]
    assert outputs[-1]["mime"] == "text/markdown" and outputs[-1]["text"].startswith("04 · Evaluation"), outputs[-1]
    severe = [e["message"] for e in console if e["level"] == "SEVERE"]
    assert severe == [], severe

    # the same files as papermill's run of the same stage on the same tier, in the test's results folder
    written = lab_results / TIER
    tables = sorted(p.name for p in written.iterdir() if p.suffix in (".csv", ".parquet"))
    assert "accuracy.csv" in tables and "predictions.parquet" in tables, tables
    for name in tables:
        read = pd.read_csv if name.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(written / name), read(expected / name), obj=name)
    lab_run, papermill_run = (json.loads((folder / "run.json").read_text())["stages"][Path(STAGE).stem]
                              for folder in (written, expected))
    timing = dict.fromkeys(("started", "finished", "seconds", "peak_rss_mb"))  # when, how long, the kernel's memory:
    # the only fields that may differ
    assert {**lab_run, **timing} == {**papermill_run, **timing}
    # the edited, executed notebook was never saved, nor a checkpoint of it left beside it
    assert digest(notebook) == before
    assert had_checkpoints or not (paths.NOTEBOOKS / ".ipynb_checkpoints").exists()
    print(f"Run All Cells in JupyterLab: {seconds:.0f}s")
