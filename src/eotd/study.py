"""Run the numbered notebooks in order with papermill: `python -m eotd.study params/X.yaml` (what `make study` does).

Each notebook renders into the cache and replaces results/<name>/NN_stage.ipynb, beside that stage's outputs, once
the stage has finished; a full run ends with results/<name>/report.html (eotd.html_report). A stage whose notebook,
params, package code and upstream stages are unchanged since its last successful run is reused, not re-executed (and
inside a stage, teacher calls, trained students and generations are cached too). A failing stage stops the run; its
rendered notebook (with the traceback) is kept in the cache and its path printed. From its first executed stage to
its last, a study marks the folder incomplete (run.json's `incomplete`, shown by the report), so a stopped or failed
run never leaves a silent mix of two runs.

One study per tier at a time (eotd.locks): a second one of the same tier, or a stage of it run from JupyterLab,
refuses at once naming the holder's pid; `--wait` queues behind it instead.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import sys
from pathlib import Path

from eotd import locks, params, paths, records, runinfo

STATE = "stages.json"
# Imported when first used (seconds of start-up): a study refused by the tier's lock exits at once.
_LAZY = {"nbformat": "nbformat", "papermill": "papermill", "html_report": "eotd.html_report"}


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _QuietUnknownParameters(logging.Filter):
    """Every notebook gets the whole params file; papermill's warning for keys a notebook does not list is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Passed unknown parameter" not in record.getMessage()


logging.getLogger("papermill").addFilter(_QuietUnknownParameters())


def notebooks() -> list[Path]:
    return sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _code_hash() -> str:
    digest = hashlib.sha256()
    for f in sorted((paths.ROOT / "src" / "eotd").rglob("*")):
        if f.suffix in (".py", ".yaml"):
            digest.update(f.read_bytes())
    return digest.hexdigest()


def stage_key(notebook: Path, p: params.Params, upstream: str, code: str) -> str:
    material = [notebook.read_bytes().hex(), json.dumps(p.to_dict(), sort_keys=True), upstream, code,
                os.environ.get("EOTD_DATA_DIR", "")]
    if p.rationales_file:  # its contents are the training data: an edit re-runs 02 and everything after
        material.append(runinfo.file_hash(paths.project_path(p.rationales_file)))
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()


def notebook_parameters(params_file: str | Path, p: params.Params) -> dict:
    """What papermill passes to each notebook: the run's name when its file is params/<name>.yaml, else the file's
    path; the notebook loads and validates the rest itself (params.for_notebook)."""
    path = params.locate(params_file)
    return {"name": p.name if params.source(p.name).resolve() == path else str(path)}


def _relative_metadata(rendered: Path) -> None:
    """papermill records the notebook paths it was given; keep them relative to the project (no machine paths)."""
    import nbformat

    nb = nbformat.read(rendered, as_version=nbformat.NO_CONVERT)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = paths.relative(meta[key])
    parameters = meta.get("parameters", {})
    if str(parameters.get("name", "")).startswith("/"):
        parameters["name"] = paths.relative(parameters["name"])
    nbformat.write(nb, rendered)


def _publish(rendered: Path, target: Path) -> None:
    """Put a finished stage's rendered notebook in place of the earlier one in one step, naming where it now is."""
    import nbformat

    nb = nbformat.read(rendered, as_version=nbformat.NO_CONVERT)
    if "papermill" in nb.get("metadata", {}):
        nb.metadata.papermill.output_path = paths.relative(target)
    records.atomic_write_text(target, nbformat.writes(nb) + "\n")
    rendered.unlink()


def _refresh_report(out: Path) -> None:
    """Rebuild an existing report.html so that it shows the folder's incomplete mark as it stands."""
    from eotd import html_report

    if (out / html_report.REPORT).exists():
        html_report.build(out)


def preflight(p: params.Params) -> None:
    """What can be checked before stage 01 so a long run does not fail (or silently shrink) hours later: the data
    folder exists and every named benchmark loads. Raises SystemExit naming the problem."""
    from eotd import evalsets

    try:
        if p.data_dir is None:
            paths.data_dir()
        elif not paths.project_path(p.data_dir).is_dir():
            raise FileNotFoundError(f"params {p.name!r}: data_dir {p.data_dir!r} is not a folder")
        missing = evalsets.check_available(p)
    except (FileNotFoundError, evalsets.EvalSetError) as exc:
        raise SystemExit(f"[eotd.study] {exc}") from None
    for name, why in missing.items():
        print(f"[eotd.study] skipping {name} (skip_missing_sets): {why}", flush=True)


def run(params_file: str | Path, stages: list[str] | None = None, kernel: str = "python3", force: bool = False,
        wait: bool = False) -> Path:
    """Execute (or reuse) every numbered notebook, or those whose names start with one of `stages`, holding the
    tier's lock throughout (locks.TierBusy when another run holds it, unless `wait`)."""
    try:
        p = params.load(params_file)
    except params.ParamsError as exc:
        raise SystemExit(f"[eotd.study] {exc}") from None
    with locks.TierLock(p.name).hold(wait), _kernels_under_lock():
        return _run(params_file, p, stages, kernel, force)


class _kernels_under_lock:
    """The notebook kernels this process starts learn that it holds the tier's lock (notebook.start then takes none)."""

    def __enter__(self) -> None:
        self.before = os.environ.get(locks.HOLDER_ENV)
        os.environ[locks.HOLDER_ENV] = str(os.getpid())

    def __exit__(self, *exc) -> None:
        if self.before is None:
            os.environ.pop(locks.HOLDER_ENV, None)
        else:
            os.environ[locks.HOLDER_ENV] = self.before


def _plan(p: params.Params, stages: list[str] | None, state: dict, out: Path,
          force: bool) -> list[tuple[Path, str, bool]]:
    """(notebook, key, whether it executes) for each selected stage; a stage whose key and rendered notebook are
    those of its last successful run is reused."""
    code, upstream, plan = _code_hash(), "", []
    for notebook in notebooks():
        key = stage_key(notebook, p, upstream, code)
        upstream = key  # every stage enters the chain, run or not, so a partial run stores the keys a full one would
        if stages and not notebook.name.startswith(tuple(stages)):
            continue
        reused = not force and state.get(notebook.name) == key and (out / notebook.name).exists()
        plan.append((notebook, key, not reused))
    return plan


def _run(params_file: str | Path, p: params.Params, stages: list[str] | None, kernel: str, force: bool) -> Path:
    import papermill

    from eotd import html_report

    paths.pin_environment()  # the kernels run in notebooks/: they must see the folders the caller meant
    preflight(p)
    out = paths.results_dir(p.name)
    state_file = out / STATE
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    plan = _plan(p, stages, state, out, force)
    if runinfo.begin_study(out, executed=[nb.stem for nb, _, execute in plan if execute],
                           reused=[nb.stem for nb, _, execute in plan if not execute]):
        _refresh_report(out)
    for notebook, key, execute in plan:
        target = out / notebook.name
        if not execute:
            print(f"[eotd.study] {notebook.name}: unchanged, reusing {target}", flush=True)
            continue
        print(f"[eotd.study] {notebook.name} -> {target}", flush=True)
        state.pop(notebook.name, None)  # from here its result files change: reused only once it finishes again
        records.write_json(state_file, state)
        rendered = paths.cache_dir(f"rendering/{p.name}") / notebook.name
        try:
            papermill.execute_notebook(
                notebook, rendered, parameters=notebook_parameters(params_file, p), kernel_name=kernel,
                cwd=str(paths.NOTEBOOKS), progress_bar=False, request_save_on_cell_execute=True,
            )
        except papermill.PapermillExecutionError as exc:
            raise SystemExit(f"[eotd.study] stage {notebook.name} failed: {exc.ename}: {exc.evalue}\n"
                             f"see the rendered notebook {rendered}") from None
        finally:
            if rendered.exists():
                _relative_metadata(rendered)
        _publish(rendered, target)
        state[notebook.name] = key
        records.write_json(state_file, state)
        if runinfo.end_stage(out, notebook.stem):
            _refresh_report(out)
    if not stages:
        for removed in runinfo.remove_undeclared(out, [nb.stem for nb in notebooks()]):
            print(f"[eotd.study] removed {removed}: no stage of this run wrote it", flush=True)
    if not stages or (out / html_report.REPORT).exists():
        print(f"[eotd.study] report: {paths.relative(html_report.build(out))}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params_file", nargs="?", default="params/default.yaml")
    parser.add_argument("--stages", nargs="*", help="only the notebooks whose names start with these (e.g. 01 02)")
    parser.add_argument("--force", action="store_true", help="re-execute stages even when unchanged")
    parser.add_argument("--wait", action="store_true",
                        help="when another study or notebook of this tier runs, wait for it instead of refusing")
    args = parser.parse_args(argv)
    out = run(args.params_file, args.stages, force=args.force, wait=args.wait)
    print(f"[eotd.study] done: results in {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
