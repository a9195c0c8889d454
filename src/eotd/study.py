"""Run the numbered notebooks in order with papermill: `python -m eotd.study params/X.yaml` (what `make study` does).

Each rendered notebook goes to results/<name>/NN_stage.ipynb beside that stage's outputs. A failing stage stops the
run; its rendered notebook (with the traceback) is kept and its path printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import papermill

from eotd import params, paths


def notebooks() -> list[Path]:
    return sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run(params_file: str | Path, stages: list[str] | None = None, kernel: str = "python3") -> Path:
    """Execute every numbered notebook (or those whose names start with one of `stages`) on a params file."""
    p = params.load(params_file)
    out = paths.results_dir(p.name)
    chosen = [nb for nb in notebooks() if not stages or nb.name.startswith(tuple(stages))]
    for notebook in chosen:
        target = out / notebook.name
        print(f"[eotd.study] {notebook.name} -> {target}", flush=True)
        try:
            papermill.execute_notebook(
                notebook, target, parameters=p.to_dict(), kernel_name=kernel,
                cwd=str(paths.NOTEBOOKS), progress_bar=False, request_save_on_cell_execute=True,
            )
        except papermill.PapermillExecutionError as exc:
            raise SystemExit(f"[eotd.study] stage {notebook.name} failed: {exc.ename}: {exc.evalue}\n"
                             f"see the rendered notebook {target}") from None
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params_file", nargs="?", default="params/default.yaml")
    parser.add_argument("--stages", nargs="*", help="only the notebooks whose names start with these (e.g. 01 02)")
    args = parser.parse_args(argv)
    out = run(args.params_file, args.stages)
    print(f"[eotd.study] done: results in {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
