import io
import subprocess
import sys

import pytest

from eotd import console


@pytest.fixture
def batch(monkeypatch):
    monkeypatch.delenv("EOTD_PROGRESS", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def test_mode_follows_the_environment(batch, monkeypatch):
    assert console.mode() == "lines"  # pytest's stderr is not a terminal
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/04_evaluation.ipynb")  # a JupyterLab kernel
    assert console.mode() == "bars"
    monkeypatch.setenv("EOTD_PROGRESS", "off")
    assert console.mode() == "off"
    monkeypatch.setenv("EOTD_PROGRESS", "loud")
    with pytest.raises(ValueError, match="EOTD_PROGRESS='loud'.*bars, lines, off"):
        console.mode()


def test_a_batch_bar_prints_one_line_when_it_ends(batch, capsys):
    bar = console.bar(total=40, desc="generate PoTD")
    for _ in range(40):
        bar.update()
    bar.set_postfix(loss="0.25")
    assert capsys.readouterr().out == ""  # nothing while it runs
    bar.close()
    bar.close()
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and line.startswith("generate PoTD: 40/40 in 00:00 (") and "loss=0.25" in line


def test_an_iterated_batch_bar_counts_every_item(batch, capsys):
    assert [x for x in console.bar(iterable=range(7), total=7, desc="verify")] == list(range(7))
    assert capsys.readouterr().out.startswith("verify: 7/7 in ")


def test_disabled_and_off_bars_print_nothing(batch, monkeypatch, capsys):
    bar = console.bar(total=3, desc="x", disable=True)
    bar.update(3)
    bar.close()
    monkeypatch.setenv("EOTD_PROGRESS", "off")
    bar = console.bar(total=3, desc="y")
    bar.update(3)
    bar.close()
    assert capsys.readouterr().out == ""


def test_quiet_libraries_turns_off_their_bars_in_batch_runs():
    probe = ("import datasets, huggingface_hub, transformers\n"
             "from eotd import console\n"
             "console.quiet_libraries()\n"
             "print(datasets.is_progress_bar_enabled(), transformers.utils.logging.is_progress_bar_enabled(),"
             " huggingface_hub.utils.are_progress_bars_disabled())\n")
    env = {"PATH": "/usr/bin:/bin", "EOTD_PROGRESS": "lines"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False", "True"], out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "EOTD_PROGRESS": "bars"}, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "False"], out.stderr[-2000:]


@pytest.mark.parametrize(("chosen", "hidden"), [("lines", True), ("off", True), ("bars", False)])
def test_the_gguf_loaders_own_bar_follows_the_console_mode(chosen, hidden, monkeypatch):
    from transformers import modeling_gguf_pytorch_utils as loader

    from eotd import models

    monkeypatch.setenv("EOTD_PROGRESS", chosen)
    with models.gguf_bar_as_console():
        assert loader.tqdm(range(3), file=io.StringIO()).disable is hidden
    assert loader.tqdm(range(3), file=io.StringIO()).disable is False  # the loader's own bar is back afterwards
