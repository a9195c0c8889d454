import pytest

from eotd import paths, tiers


def test_readme_tier_table_is_the_generated_one():
    """README's table between the tiers markers is what `python -m eotd.tiers` writes from params/*.yaml: after
    changing a params file, run it."""
    assert tiers.current(paths.ROOT / "README.md") == tiers.block(), "run `python -m eotd.tiers`"
    tiers.main(["--check"])


def test_one_row_per_tier_from_the_files():
    text = tiers.markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{p.stem}`" for p in tiers.tier_files()]
    assert {p.stem for p in tiers.tier_files()} == {p.stem for p in paths.PARAMS.glob("*.yaml")}
    smoke = next(row for row in rows if row.startswith("| `smoke`"))
    assert "`tiny-llama`" in smoke and "12 questions of `gsm8k_train` + `svamp` 8" in smoke and "`gsm_symbolic_instance` 6" in smoke
    default = next(row for row in rows if row.startswith("| `default`"))
    assert "ETD (one per question; read by its fallback only)" in default and "ETD (union), EoTD-forward" in smoke
    paper = next(row for row in rows if row.startswith("| `paper`"))
    assert "CoTD ×3 (seeds 0, 1, 2)" in paper and "ETD (union) ×3 (seeds 0, 1, 2)" in paper
    assert "`gsm_symbolic_template` 500" in paper and "`gsm8k_test` all" in paper  # a generated set has no "all"


def test_new_and_unknown_keys_never_break_the_table(tmp_path):
    (tmp_path / "wide.yaml").write_text(
        "# A tier from the future. With keys Params may not know yet.\n"
        "train_dataset: gsm8k_train\ntrain_questions: 100\n"
        "train_extra: {svamp: 300, asdiv: null}\n"
        "train_seeds: {PoTD: [0, 1, 2], EoTD: 2}\n"
        "methods: [CoTD, PoTD, EoTD]\nevaluate_base: false\n"
        "eval_sets: [gsm8k_test, svamp]\neval_limit: null\neval_limits: {svamp: 50}\n"
        "ablation_thought_mixes: false\nablation_size_methods: []\nablation_style_methods: []\n"
        "a_key_nobody_knows: {nested: [1, 2]}\nepochs: {odd: shape}\nteacher: [not, a, name]\n")
    (tmp_path / "broken.yaml").write_text("- just\n- a list\n")
    text = tiers.markdown(tmp_path)
    wide = next(line for line in text.splitlines() if line.startswith("| `wide`"))
    assert "100 questions of `gsm8k_train` + `svamp` 300, `asdiv` all" in wide
    assert "PoTD ×3 (seeds 0, 1, 2)" in wide and "EoTD ×2" in wide and "base" not in wide
    assert "`gsm8k_test` all, `svamp` 50" in wide and wide.endswith("| none |")
    assert "- `wide`: A tier from the future." in text
    assert "| `broken` | unreadable" in text


def test_update_readme_replaces_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\nbefore\n")
    assert tiers.update_readme(readme) and readme.read_text().endswith(tiers.block() + "\n")
    readme.write_text(f"before\n{tiers.START}\nold table\n{tiers.END}\nafter\n")
    assert tiers.update_readme(readme)
    assert readme.read_text() == f"before\n{tiers.block()}\nafter\n"
    assert not tiers.update_readme(readme)
    readme.write_text(f"{tiers.END}\n{tiers.START}\n")
    with pytest.raises(ValueError):
        tiers.update_readme(readme)
