"""What a run prints while it works: live progress bars where someone watches (JupyterLab, a terminal), one line per
finished loop in batch runs (papermill, CI), so a rendered notebook reads as a report, not a log.

`EOTD_PROGRESS` = bars | lines | off overrides the choice.
"""
from __future__ import annotations

import io
import logging
import os
import sys

from tqdm import std

MODES = ("bars", "lines", "off")
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} in {elapsed} ({rate_fmt}{postfix})"


def mode() -> str:
    """"bars" in a Jupyter server's kernel (JupyterLab sets JPY_SESSION_NAME) or a terminal, else "lines"."""
    chosen = os.environ.get("EOTD_PROGRESS", "").strip().lower()
    if chosen:
        if chosen not in MODES:
            raise ValueError(f"EOTD_PROGRESS={chosen!r}: must be one of {', '.join(MODES)}")
        return chosen
    return "bars" if "JPY_SESSION_NAME" in os.environ or sys.stderr.isatty() else "lines"


class _OneLine(std.tqdm):
    """A bar that draws nothing while it runs and prints one line when it closes: count, time, rate, postfix."""

    def __init__(self, *args, **kwargs):
        kwargs.pop("dynamic_ncols", None)
        super().__init__(*args, file=io.StringIO(), bar_format=LINE_FORMAT, **kwargs)

    def close(self) -> None:
        if self.disable:  # closed already, or never shown
            return
        line = str(self).replace("( ", "(")  # tqdm pads the rate to a width
        super().close()
        print(line, flush=True)


def bar(**kwargs) -> std.tqdm:
    """A tqdm progress bar in the current mode (kwargs as for tqdm: total, desc, disable, ...)."""
    current = mode()
    if current == "bars":
        from tqdm.auto import tqdm

        return tqdm(**kwargs)
    return _OneLine(**{**kwargs, "disable": kwargs.get("disable", False) or current == "off"})


def quiet_libraries() -> None:
    """Outside "bars" mode, silence the libraries' own bars and notices (loading weights, saving datasets, the
    tied-weights note of every checkpoint): a batch run shows eotd's lines and real errors only."""
    if mode() == "bars":
        return
    import datasets
    import huggingface_hub
    import transformers

    huggingface_hub.utils.disable_progress_bars()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
