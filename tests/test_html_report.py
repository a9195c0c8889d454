import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from browser import check_report  # noqa: E402

from eotd import html_report, paths  # noqa: E402


@pytest.fixture
def run(tmp_path):
    """A results folder with two rendered notebooks (one with a figure output), a figure file and accuracy.csv."""
    out = tmp_path / "unit"
    out.mkdir()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(out / "fig_line.png")
    plt.close(fig)
    image = (out / "fig_line.png").read_bytes()
    import base64

    for stage in ("01_data_synthesis", "06_plots"):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("plot()")
        cell.outputs = [nbformat.v4.new_output("display_data", {"image/png": base64.b64encode(image).decode()})]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {stage}"), cell]
        nbformat.write(nb, out / f"{stage}.ipynb")
    (out / "synthesis_summary.json").write_text(json.dumps({
        "teacher": "annotation:gold-annotations-v2", "teacher_is_llm": False, "questions": 2,
        "train_dataset": "gsm_symbolic", "etd_kept": 2, "tokens": {"total": 0}, "cost": 0.0, "new_teacher_calls": 0,
        "stopped_by_budget": False,
        "types": {"pot": {"requested": 2, "generated": 2, "verified": 2, "kept": 2, "reasons": {"ok": 2}}}}))
    pd.DataFrame([{"dataset": "svamp", "method": m, "strategy": s, "n": 10, "correct": c, "accuracy": c / 10,
                   "ci_low": 0.0, "ci_high": 0.5} for m, s, c in [("base", "cot", 1), ("PoTD", "pot", 3)]]
                 ).to_csv(out / "accuracy.csv", index=False)
    (out / "run.json").write_text(json.dumps({"params_name": "unit", "stages": {"01_data_synthesis": {
        "git_commit": "0123456789abcdef", "params": {"student": "tiny-llama", "train_questions": 2,
                                                   "train_dataset": "gsm_symbolic"}}}}))
    return out


def test_report_links_every_stage_page_and_figure_and_needs_no_network(run):
    report = html_report.build(run)
    text = report.read_text()
    assert report == run / "report.html"
    assert '<img src="fig_line.png"' in text and "0123456789ab" in text
    assert '<a href="html/01_data_synthesis.html">' in text and '<a href="html/06_plots.html">' in text
    assert "<th>PoTD (pot)</th>" in text and "30.0% [0.0–50.0]" in text  # the headline table
    assert "Teacher <code>annotation:gold-annotations-v2</code>" in text  # 01's summary, rendered from markdown
    for page in [report, *(run / "html").glob("*.html")]:
        body = page.read_text()
        assert "src=\"http" not in body and "href=\"http" not in body, page  # nothing from a CDN
        assert str(paths.ROOT) not in body and str(run) not in body, page  # no machine paths
    assert sorted(p.name for p in (run / "html").iterdir()) == ["01_data_synthesis.html", "06_plots.html",
                                                                 "jupyterlab.css"]
    css = (run / "html" / "jupyterlab.css").read_text()
    assert len(css) > 100_000 and "--jp-layout-color0" in css  # JupyterLab's stylesheet and light theme, once
    for page in (run / "html").glob("*.html"):
        body = page.read_text()
        assert '<link rel="stylesheet" href="jupyterlab.css">' in body and "--jp-layout-color0" not in body, page


def test_report_command_names_a_run_without_notebooks(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="no rendered notebooks in \\$EOTD_RESULTS_DIR/nothing: run the study"):
        html_report.main(["nothing"])


def test_report_displays_in_a_browser(run):
    html_report.build(run)
    check_report(run / "report.html", "report-unit.png")


def test_committed_default_report_displays_in_a_browser():
    report = paths.ROOT / "results" / "default" / html_report.REPORT
    if not report.exists():
        pytest.skip("results/default/report.html is written by `make study`")
    check_report(report, "report-default.png")
