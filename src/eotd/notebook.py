"""The first and last call of every stage notebook: its params, read from the file its parameters cell names, and
a closing summary of what the stage found, generated from the files it wrote."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from IPython.display import Markdown, display

from eotd import console, locks, params, paths, runinfo, summaries

_started: dict[str, datetime] = {}  # run name -> when its stage's start() ran in this kernel


def start(name: str, overrides: dict | None = None) -> tuple[params.Params, Path]:
    """(params, results folder) of the run `name` with `overrides`; shows where they come from, and keeps a batch
    run's output to eotd's own lines (see console). Takes the tier's lock (eotd.locks) until finish() or the kernel
    ends, unless the study running this notebook holds it: refuses while another study or notebook of the tier runs."""
    console.quiet_libraries()
    started = datetime.now(timezone.utc)
    p = params.for_notebook(name, overrides)
    _started[p.name] = started
    locks.for_stage(p.name)
    changes = ", ".join(f"`{k}` = `{v!r}`" for k, v in sorted((overrides or {}).items()))
    display(Markdown(f"Run **`{p.name}`**: settings from `{paths.relative(params.source(name))}`"
                     + (f", with overrides {changes} (this run differs from the file)." if changes else ".")))
    return p, paths.results_dir(p.name)


def finish(stage: str, p: params.Params, inputs=(), **recorded) -> None:
    """Record the stage in run.json (with its time and the files it wrote since start()), then show its summary
    (eotd.summaries) as the notebook's last output."""
    out = paths.results_dir(p.name)
    runinfo.write_run_json(out, stage, p, inputs, started=_started.pop(p.name, None), **recorded)
    locks.release_stage(p.name)
    display(Markdown(summaries.for_stage(stage, out)))
