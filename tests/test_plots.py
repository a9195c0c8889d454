import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from eotd import plots, protocol  # noqa: E402

DATASETS = ["gsm_symbolic_template", "svamp"]


def _acc_row(dataset, method, strategy, acc, n=100):
    return {"dataset": dataset, "method": method, "strategy": strategy, "n": n, "correct": round(acc * n),
            "accuracy": acc, "ci_low": max(acc - 0.05, 0), "ci_high": min(acc + 0.05, 1)}


@pytest.fixture
def acc():
    rows = []
    for i, d in enumerate(DATASETS):
        rows += [_acc_row(d, "base", "cot", 0.10 + i / 100), _acc_row(d, "base", "pot", 0.05),
                 _acc_row(d, "base", "eot", 0.02),
                 _acc_row(d, "CoTD", "cot", 0.30), _acc_row(d, "PoTD", "pot", 0.40), _acc_row(d, "EoTD", "eot", 0.35)]
        rows += [_acc_row(d, "ETD", s, a) for s, a in
                 [("cot", 0.31), ("pot", 0.42), ("eot", 0.36), ("fallback:pot>eot>cot", 0.45), ("vote", 0.44)]]
    rows.append(_acc_row("gsm_symbolic_template_overlap", "ETD", "fallback:pot>eot>cot", 0.9, n=7))
    return pd.DataFrame(rows)


def _bar_containers(ax):
    return [c for c in ax.containers if isinstance(c, matplotlib.container.BarContainer)]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_accuracy_by_method_one_bar_per_method_and_dataset_with_ci(acc):
    fig = plots.accuracy_by_method(acc)
    ax = fig.axes[0]
    containers = _bar_containers(ax)
    bars = [b for c in containers for b in c]
    assert len(containers) == 5 and len(bars) == 10  # 5 methods x 2 headline datasets, no _overlap
    heights = sorted(round(b.get_height(), 3) for b in bars)
    assert 0.45 in heights and 0.9 not in heights and 0.42 not in heights  # ETD at its fallback, overlap excluded
    assert [t.get_text() for t in ax.get_xticklabels()] == ["svamp", "gsm_symbolic_template"]  # paper's sets first
    assert ax.get_ylim() == (0, pytest.approx(0.50 * 1.12 + 0.01)) and ax.get_ylabel() == "accuracy"  # fits the data
    errorbars = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert len(errorbars) == 10
    segment = next(s for c in errorbars for s in c.get_segments() if abs(s[1][1] - 0.50) < 1e-9)
    assert segment[0][1] == pytest.approx(0.40)  # the ETD bar's CI runs 0.40..0.50
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "base (cot)" and labels[-1] == "ETD (fallback:pot>eot>cot)"


def test_accuracy_by_method_shows_every_training_seed_as_a_dot(acc):
    by_seed = pd.DataFrame([{"dataset": "svamp", "method": "PoTD", "strategy": "pot", "seed": k, "n": 100,
                             "correct": c, "accuracy": c / 100} for k, c in enumerate((30, 40, 70))]
                           + [{"dataset": "svamp", "method": "PoTD", "strategy": "cot", "seed": 0, "n": 100,
                               "correct": 99, "accuracy": 0.99}])  # another strategy: not PoTD's headline
    ax = plots.accuracy_by_method(acc, by_seed=by_seed).axes[0]
    dots = [p for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection) for p in c.get_offsets()]
    assert sorted(round(y, 2) for _, y in dots) == [0.3, 0.4, 0.7]
    assert ax.get_ylim()[1] == pytest.approx(0.7 * 1.12 + 0.01) and "dots: training seeds" in ax.get_title()
    wide = acc.copy()
    wide.loc[wide["method"] == "ETD", "ci_high"] = 1.0  # two seeds far apart: an interval up to 100 %
    assert plots.accuracy_by_method(wide).axes[0].get_ylim()[1] < 1  # the axis still fits the accuracies


def test_method_differences_forest_plot_per_dataset(acc):
    comparisons = pd.DataFrame([
        {"dataset": d, "a": a, "b": b, "diff": diff, "diff_low": diff - 0.05, "diff_high": diff + 0.05, "verdict": v}
        for d in ("svamp", "svamp_overlap", "asdiv") for a, b, diff, v in
        (("base", "PoTD", -0.2, "PoTD beats base"), ("PoTD", "ETD", 0.01, "no clear difference"))])
    fig = plots.method_differences(comparisons)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["svamp", "asdiv"]  # no _overlap panel
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["base − PoTD", "PoTD − ETD"]
    beats = [line for line in panels[0].lines if line.get_color() == plots.VERDICT_COLORS["beats"]]
    assert sorted(beats[0].get_xdata()) == pytest.approx([-25.0, -15.0])  # the interval, in points
    with pytest.raises(ValueError, match="method_comparisons.csv lacks"):
        plots.method_differences(comparisons.drop(columns="diff_low"))


def test_accuracy_by_method_strategy_override_and_errors(acc):
    fig = plots.accuracy_by_method(acc, strategy_for={"ETD": "vote"})
    heights = {round(b.get_height(), 3) for c in _bar_containers(fig.axes[0]) for b in c}
    assert 0.44 in heights and 0.45 not in heights
    with pytest.raises(ValueError, match="no strategy 'nope'"):
        plots.accuracy_by_method(acc, strategy_for={"ETD": "nope"})
    with pytest.raises(ValueError, match=r"accuracy.csv lacks column\(s\) \['ci_low'\]"):
        plots.accuracy_by_method(acc.drop(columns="ci_low"))
    with pytest.raises(ValueError, match="accuracy.csv is empty"):
        plots.accuracy_by_method(acc.iloc[0:0])


def test_etd_strategies_points_per_strategy(acc):
    ax = plots.etd_strategies(acc).axes[0]
    lines = [line for line in ax.lines if len(line.get_xdata()) == len(DATASETS)]
    assert len(lines) == 5  # cot, pot, eot, fallback, vote
    assert list(lines[3].get_ydata()) == pytest.approx([0.45, 0.45])
    assert len([c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]) == 10
    with pytest.raises(ValueError, match="method == 'ETD'"):
        plots.etd_strategies(acc[acc["method"] != "ETD"])


def _ablation_rows(ablation, variant, dataset, strategy, acc, **extra):
    return {"ablation": ablation, "variant": variant, "train_examples": 1000, "dataset": dataset,
            "strategy": strategy, "n": 100, "correct": round(100 * acc), "accuracy": acc,
            "ci_low": acc - 0.05, "ci_high": acc + 0.05, **extra}


def test_data_size_curves_lines_per_method_and_facets():
    rows = []
    for d in DATASETS:
        for frac, examples in [("25%", 250), ("50%", 500), ("100%", 1000)]:
            rows.append({**_ablation_rows("data_size", f"ETD {frac}", d, "fallback:pot>eot>cot", examples / 2000),
                         "train_examples": examples})
            rows.append({**_ablation_rows("data_size", f"ETD {frac}", d, "cot", 0.01), "train_examples": examples})
            rows.append({**_ablation_rows("data_size", f"EoTD {frac}", d, "eot", examples / 4000),
                         "train_examples": examples})
    fig = plots.data_size_curves(pd.DataFrame(rows))
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == DATASETS
    ax = fig.axes[0]
    lines = [line for line in ax.lines if len(line.get_xdata()) == 3]
    assert len(lines) == 2
    ys = sorted(tuple(line.get_ydata()) for line in lines)
    assert ys[1] == pytest.approx((0.125, 0.25, 0.5))  # ETD read at its fallback, not at cot
    assert ax.get_xlabel() == "training examples" and ax.get_xscale() == "linear"
    with pytest.raises(ValueError, match="ablation == 'data_size'"):
        plots.data_size_curves(pd.DataFrame(rows).assign(ablation="other"))


def test_data_size_curves_method_column_and_log_axis():
    rows = [{**_ablation_rows("data_size", f"{e}", "svamp", "pot", e / 10000), "train_examples": e, "method": "PoTD"}
            for e in (10, 100, 1000)]
    fig = plots.data_size_curves(pd.DataFrame(rows))
    assert len(fig.axes) == 1 and fig.axes[0].get_xscale() == "log"
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "PoTD"


def test_thought_mix_heatmap_annotations():
    rows = []
    mixes = ["+".join(mix) for mix in protocol.THOUGHT_MIXES]
    for i, mix in enumerate(mixes):
        for d in DATASETS:
            variant = "+".join(reversed(mix.split("+")))  # order in the file must not matter
            if "+" in mix:
                rows.append(_ablation_rows("thought_mix", variant, d, "fallback:pot>eot>cot", 0.1 * i + 0.05))
                rows.append(_ablation_rows("thought_mix", variant, d, "vote", 0.0))
            else:
                rows.append(_ablation_rows("thought_mix", variant, d, mix, 0.1 * i + 0.05))
    fig = plots.thought_mix_heatmap(pd.DataFrame(rows))
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 14 and texts[:2] == ["5.0%", "5.0%"] and texts[-1] == "65.0%"
    assert [t.get_text() for t in ax.get_yticklabels()] == mixes
    assert [t.get_text() for t in ax.get_xticklabels()] == DATASETS


def test_loss_curves_one_panel_per_method_one_line_per_seed():
    losses = pd.DataFrame([{"method": m, "step": s, "epoch": 0, "loss": 2.0 / (s + 1), "tokens_per_s": 1.0, "lr": 1e-4}
                           for m in ("CoTD@0", "PoTD@0", "PoTD@1", "PoTD@2", "mix:cot+pot") for s in range(5)])
    fig = plots.loss_curves(losses)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["CoTD (1 seed)", "PoTD (3 seeds)", "mix:cot+pot (1 seed)"]
    assert [len(ax.lines) for ax in panels] == [1, 3, 1]
    assert (panels[0].get_xlabel(), panels[0].get_ylabel()) == ("step", "training loss")
    with pytest.raises(ValueError, match=r"training_losses.csv lacks column\(s\) \['loss'\]"):
        plots.loss_curves(losses.drop(columns="loss"))


def test_accuracy_by_form_draws_inverse_beside_forward():
    by_form = pd.DataFrame([{"dataset": d, "form": f, "method": m, "strategy": "eot", "seeds": 5, "n": 40,
                             "accuracy": 0.1} for d in ("svamp", "asdiv") for f in ("inverse", "forward", "unknown")
                            for m in ("EoTD", "EoTD-forward")])
    fig = plots.accuracy_by_form(by_form)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["svamp\n(inverse 40, forward 40 problems)",
                                                       "asdiv\n(inverse 40, forward 40 problems)"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["inverse", "forward"]
    with pytest.raises(ValueError, match="no inverse or forward rows"):
        plots.accuracy_by_form(by_form[by_form["form"] == "unknown"])


def test_acceptance_bars():
    summary = {"teacher": "annotation", "teacher_is_llm": False, "cost": 0.0, "tokens": {},
               "types": {t: {"requested": 10, "generated": 10, "verified": 8, "kept": 7, "reasons": {"ok": 8}}
                         for t in ("cot", "pot", "eot")}}
    ax = plots.acceptance(summary).axes[0]
    assert len(ax.containers) == 3 and sum(len(c) for c in ax.containers) == 9
    assert sorted(round(b.get_height()) for c in ax.containers for b in c) == [7, 7, 7, 8, 8, 8, 10, 10, 10]
    assert "annotation" in ax.get_title()
    with pytest.raises(ValueError, match="no 'types'"):
        plots.acceptance({"teacher": "x"})
    with pytest.raises(ValueError, match=r"types.cot lacks \['kept'\]"):
        plots.acceptance({"types": {"cot": {"generated": 1, "verified": 1}}})


def test_reference_table_keeps_ours_and_references_apart(acc):
    run_info = {"params_name": "default", "stages": {"train": {"params": {
        "student": "HuggingFaceTB/SmolLM2-135M", "teacher": "annotation", "train_questions": 1000,
        "train_dataset": "gsm_symbolic"}}}}
    table = plots.reference_table(acc, run_info)
    ours, refs = table[table["origin"] == "ours"], table[table["origin"] == "published"]
    assert len(ours) == 10 and ours["comparable"].all() and not refs["comparable"].any()
    assert not ours["dataset"].str.endswith("_overlap").any()
    setting = ours["setting"].iloc[0]
    assert all(s in setting for s in ["SmolLM2-135M", "annotation", "1000 gsm_symbolic", "CPU"])
    card = refs[refs["accuracy"] == 0.4488].iloc[0]
    assert "zhuxunyu/math-codet5p-770m-py" in card["source"] and "gpt-3.5-turbo" in card["setting"]
    assert {0.2199, 0.845, 0.855} <= set(refs["accuracy"])
    assert refs["source"].str.len().gt(0).all() and refs["setting"].str.len().gt(0).all()


def test_verdicts_bars_per_reason_and_type_saved_as_a_png_of_the_figure(tmp_path):
    fig = plots.verdicts({"cot": {"reasons": {"ok": 3, "wrong_answer": 1}},
                          "pot": {"reasons": {"ok": 5, "timeout": 2}}}, "Verdicts")
    ax = fig.axes[0]
    heights = {(bar.get_x().__round__(2), bar.get_height()) for c in _bar_containers(ax) for bar in c}
    assert sorted(h for _, h in heights if h == h) == [1, 2, 3, 5]  # NaN bars: reasons a type never had
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ok", "wrong_answer", "timeout"]
    assert ax.get_yscale() == "log" and ax.get_title() == "Verdicts"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cot", "pot"]
    saved = plots.save(fig, tmp_path / "v.png")
    image = plt.imread(saved)
    width, height = fig.get_size_inches() * 120  # dpi 120, cropped to the drawn area
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.5 * height < image.shape[0] <= height + 2 and 0.5 * width < image.shape[1] <= width + 2
    assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas
