"""One static HTML report per run: `results/<name>/report.html` with the setting, the headline table, every stage's
summary, the figures, and links to each rendered stage notebook as HTML (`results/<name>/html/`, by nbconvert).

`python -m eotd.html_report [params/<name>.yaml | name]` (what `make report` does; `make study` ends with it). The
pages load nothing from the network, so they read the same offline, on a laptop or as CI artefacts.
"""
from __future__ import annotations

import argparse
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from jinja2 import DictLoader
from nbconvert import HTMLExporter
from nbconvert.filters import markdown2html

from eotd import paths, records, summaries
from eotd.tables import headline_pivot, read_json, run_params, setting_line

REPORT = "report.html"
NOTEBOOK_HTML = "html"
SHARED_CSS = "jupyterlab.css"
_LAB_CSS = ("static/index.css", "static/theme-light.css")  # what the lab template inlines (light theme)
# JupyterLab's look without its CDN scripts (require.js, MathJax, mermaid, the widget manager a library's progress bar
# pulls in): the rendered stages need none.
_OFFLINE = {"eotd_offline.html.j2": """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""}
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 75rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .setting { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
section.stage { border-left: 3px solid #4c72b0; padding-left: 1rem; margin: 1rem 0; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; } code { background: #f3f3f3; padding: 0 0.2rem; }
.incomplete { background: #fff3cd; border: 1px solid #d4a017; padding: 0.5rem 1rem; }
"""


def stage_notebooks(out: Path) -> list[Path]:
    """The rendered stage notebooks of a run, in stage order."""
    return sorted(Path(out).glob("[0-9][0-9]_*.ipynb"))


def export_notebooks(out: Path) -> dict[str, Path]:
    """Each rendered notebook as an HTML page in <out>/html/ (JupyterLab's look, no network). The lab template inlines
    JupyterLab's stylesheets (~250 kB) into every page; they go to one html/jupyterlab.css that the pages link."""
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader(_OFFLINE)],
                            template_file="eotd_offline.html.j2")
    env = exporter.environment
    inlined = [f'<style type="text/css">\n{env.loader.get_source(env, name)[0]}</style>' for name in _LAB_CSS]
    folder = Path(out) / NOTEBOOK_HTML
    pages = {}
    for notebook in stage_notebooks(out):
        body, _ = exporter.from_filename(str(notebook))
        if all(style in body for style in inlined):
            body = body.replace(inlined[0], f'<link rel="stylesheet" href="{SHARED_CSS}">', 1)
            body = body.replace(inlined[1], "", 1)
        pages[notebook.stem] = records.atomic_write_text(folder / f"{notebook.stem}.html", body)
    records.atomic_write_text(folder / SHARED_CSS, "\n".join(css.split("\n", 1)[1].removesuffix("</style>")
                                                           for css in inlined))
    return pages


def _stage_list(stages: list[str]) -> str:
    return ", ".join(f"<code>{html.escape(s)}</code>" for s in stages) or "none"


def _incomplete(mark: dict) -> str:
    """The warning for a folder with stages that no study finished (run.json's `incomplete`)."""
    commit = html.escape((mark["git_commit"] or "not recorded")[:12])
    return (f'<p class="incomplete"><strong>Incomplete:</strong> not every stage is from a finished study. The '
            f"latest study (code <code>{commit}</code>, started {html.escape(mark['started'])}) finished "
            f"{_stage_list(mark['finished'])}; not finished (stopped, failed, still running or not run): "
            f"{_stage_list(mark['pending'])}. Their notebooks are from an earlier run and their result files may "
            "be partly from a later one; <code>run.json</code> names the commit and time of each stage.</p>")


def _figure(path: Path) -> str:
    caption = path.stem.removeprefix("fig_").replace("_", " ")
    return (f'<figure><img src="{html.escape(path.name)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)} (<code>{html.escape(path.name)}</code>)</figcaption></figure>")


def build(out: Path) -> Path:
    """Write <out>/report.html (and the stage pages it links to) from the files the stages wrote in <out>."""
    out = Path(out)
    pages = export_notebooks(out)
    run_info, synthesis = read_json(out / "run.json"), read_json(out / "synthesis_summary.json")
    commits = sorted({s.get("git_commit") or "not recorded" for s in run_info.get("stages", {}).values()})
    parts = [f"<h1>eotd study · <code>{html.escape(out.name)}</code></h1>",
             f'<p class="setting">{html.escape(setting_line(run_params(run_info), synthesis))} · code '
             f"{', '.join(f'<code>{html.escape(c[:12])}</code>' for c in commits)} · report written "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</p>"]
    mark = run_info.get("incomplete")
    if mark:
        parts.append(_incomplete(mark))
    if (out / "accuracy.csv").exists():
        parts += ["<h2>Headline accuracy (95 % intervals: over seeds and problems for a method with several seeds)</h2>",
                  headline_pivot(pd.read_csv(out / "accuracy.csv")).to_html(border=0, escape=True)]
    parts.append("<h2>What each stage found</h2>")
    for stage, page in pages.items():
        pending = bool(mark) and stage in mark["pending"]
        summary = summaries.for_stage(stage, out) if stage in summaries.STAGES and not pending else ""
        link = (f'<p><a href="{NOTEBOOK_HTML}/{html.escape(page.name)}">the rendered notebook</a> · '
                f'<a href="{html.escape(stage)}.ipynb">.ipynb</a></p>')
        if pending:
            link += (f'<p class="incomplete"><code>{html.escape(stage)}</code>: not finished (see above), so no '
                     "summary: its result files may mix runs.</p>")
        parts.append(f'<section class="stage" id="{html.escape(stage)}">{markdown2html(summary)}{link}</section>')
    figures = sorted(out.glob("fig_*.png"))
    if figures:
        parts += ["<h2>Figures</h2>", *map(_figure, figures)]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>eotd · {html.escape(out.name)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    return records.atomic_write_text(out / REPORT, page)


def main(argv: list[str] | None = None) -> None:
    from eotd import params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="default", help="a params file or a run name (default: default)")
    name = parser.parse_args(argv).run
    out = paths.results_dir(params.load(params.source(name)).name if name.endswith((".yaml", ".yml")) else name)
    if not stage_notebooks(out):
        raise SystemExit(f"[eotd.html_report] no rendered notebooks in {paths.relative(out)}: run the study first")
    print(f"[eotd.html_report] wrote {paths.relative(build(out))}")


if __name__ == "__main__":
    main()
