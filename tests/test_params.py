import pytest

from eotd import params, paths


def _write(tmp_path, text, name="tier.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_tier_in_params_loads():
    files = sorted(paths.PARAMS.glob("*.yaml"))
    assert files, "params/ holds no tier"
    for path in files:
        assert params.load(path).name == path.stem


def test_name_defaults_to_the_file_stem(tmp_path):
    assert params.load(_write(tmp_path, "seed: 3\n", "mytier.yaml")).name == "mytier"


def test_unknown_key_names_key_and_file(tmp_path):
    path = _write(tmp_path, "seed: 1\nsede: 2\n")
    with pytest.raises(params.ParamsError, match=r"tier\.yaml.*'sede'"):
        params.load(path)


def test_wrong_type_names_key_and_file(tmp_path):
    path = _write(tmp_path, "seed: one\n")
    with pytest.raises(params.ParamsError, match=r"tier\.yaml.*'seed'"):
        params.load(path)


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(params.ParamsError, match="seed"):
        params.load(_write(tmp_path, "seed: true\n"))


def test_int_is_accepted_as_float(tmp_path):
    assert params.load(_write(tmp_path, "verify_timeout: 2\n")).verify_timeout == 2


def test_list_items_are_checked(tmp_path):
    with pytest.raises(params.ParamsError, match="thought_types"):
        params.load(_write(tmp_path, "thought_types: [cot, 3]\n"))


def test_missing_file_says_where_tiers_live(tmp_path):
    with pytest.raises(params.ParamsError, match="no such params file"):
        params.load(tmp_path / "absent.yaml")


def test_a_notebook_reads_its_tier_and_only_the_overrides_it_names(tmp_path):
    default = params.load(paths.PARAMS / "default.yaml")
    assert params.for_notebook("default") == default
    assert params.for_notebook("default", {}) == default
    changed = params.for_notebook("default", {"eval_limit": 5, "seed": 2})
    assert (changed.eval_limit, changed.seed, changed.name) == (5, 2, "default")
    assert changed.train_questions == default.train_questions  # everything else is the file's
    custom = _write(tmp_path, "seed: 4\n", "custom.yaml")
    assert params.for_notebook(str(custom)).seed == 4
    with pytest.raises(params.ParamsError, match=r"default\.yaml with overrides \['evl_limit'\].*unknown key"):
        params.for_notebook("default", {"evl_limit": 5})
    with pytest.raises(params.ParamsError, match="'eval_limit' must be at least 1"):
        params.for_notebook("default", {"eval_limit": 0})
    with pytest.raises(params.ParamsError, match="cannot rename the run"):
        params.for_notebook("default", {"name": "mine"})
    with pytest.raises(params.ParamsError, match=r"nope\.yaml: no such params file"):
        params.for_notebook("nope")


def test_paper_tier_needs_an_api_key_and_says_which(monkeypatch):
    from eotd import teachers
    from eotd.teachers.openai_compat import TeacherConfigError

    p = params.load(paths.PARAMS / "paper.yaml")
    assert (p.teacher, p.teacher_model, p.student) == ("openai", "gpt-3.5-turbo", "Salesforce/codet5p-770m-py")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(TeacherConfigError, match="OPENAI_API_KEY"):
        teachers.build(p)


def test_paper_tier_trains_every_method_with_three_seeds_or_more():
    """With one seed a method's training noise is unknown and no comparison can be decided (docs/evaluation.md)."""
    from eotd import students

    p = params.load(paths.PARAMS / "paper.yaml")
    assert all(len(students.seeds(p, method)) >= 3 for method in p.methods)


@pytest.mark.parametrize("text, key, hint", [
    ("eval_sets: [gsm8k_tset]\n", "eval_sets", "gsm8k_test"),
    ("methods: [CoTD, XoTD]\n", "methods", "EoTD"),
    ("thought_types: [cot, xot]\n", "thought_types", "eot"),
    ("eval_limit: -5\n", "eval_limit", "null for all"),
    ("eval_limit: 0\n", "eval_limit", "at least 1"),
    ("train_questions: 0\n", "train_questions", "at least 1"),
    ("ablation_sizes: [0.5, 1.5]\n", "ablation_sizes", "(0, 1]"),
    ("etd_data: both\n", "etd_data", "one_per_question"),
    ("eval_limits: {svamp: 0}\n", "eval_limits", "at least 1"),
    ("eval_limits: {svmap: 10}\n", "eval_limits", "svamp"),
    ("verify_timeout: 0\n", "verify_timeout", "between"),
    ("fallback_orders: [[pot, xot]]\n", "fallback_orders", "cot"),
])
def test_bad_values_name_the_file_the_key_and_the_choices(tmp_path, text, key, hint):
    with pytest.raises(params.ParamsError) as info:
        params.load(_write(tmp_path, text))
    message = str(info.value)
    assert "tier.yaml" in message and repr(key) in message or key in message
    assert hint in message


def test_yaml_syntax_error_names_the_file(tmp_path):
    with pytest.raises(params.ParamsError, match=r"tier\.yaml: not valid YAML"):
        params.load(_write(tmp_path, "methods: [CoTD, PoTD\nseed: 1\n"))


def _study(tmp_path, tier_text, env_extra):
    import os
    import subprocess
    import sys

    tier = _write(tmp_path, tier_text, "bad.yaml")
    env = dict(os.environ, EOTD_RESULTS_DIR=str(tmp_path / "results"), EOTD_CACHE_DIR=str(tmp_path / "cache"),
               **env_extra)
    return subprocess.run([sys.executable, "-m", "eotd.study", str(tier)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_study_stops_before_stage_01_when_a_set_cannot_be_loaded(tmp_path):
    run = _study(tmp_path, "student: tiny-llama\neval_sets: [gsm8k_test, svamp]\n",
                 {"EOTD_DATA_DIR": str(tmp_path / "no-such-folder")})
    assert run.returncode != 0
    assert "EOTD_DATA_DIR" in run.stderr and "no-such-folder" in run.stderr
    assert "01_data_synthesis" not in run.stdout and not (tmp_path / "results" / "bad").exists()


def test_study_stops_when_the_data_folder_lacks_a_set(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    run = _study(tmp_path, "student: tiny-llama\neval_sets: [gsm_symbolic_instance, svamp]\n",
                 {"EOTD_DATA_DIR": str(empty)})
    assert run.returncode != 0 and "svamp" in run.stderr and "skip_missing_sets" in run.stderr
    assert "01_data_synthesis" not in run.stdout


def test_study_stops_on_a_bad_params_file(tmp_path):
    run = _study(tmp_path, "eval_limit: -5\n", {})
    assert run.returncode != 0 and "eval_limit" in run.stderr and "bad.yaml" in run.stderr


def _eotd_imports(path, modules: set[str]) -> set[str]:
    """The eotd modules a source file imports, at module level or inside functions: `from eotd import x`,
    `from eotd.x import y`, `import eotd.x` and the relative forms."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ("eotd" + ("." + node.module if node.module else "")) if node.level else (node.module or "")
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "eotd" and len(parts) > 1 and parts[1] in modules:
                found.add(parts[1])
    return found - {path.stem}


def test_no_import_cycle_among_eotd_modules():
    files = {p.stem: p for p in (paths.ROOT / "src" / "eotd").glob("*.py")}
    graph = {name: _eotd_imports(path, set(files)) for name, path in files.items()}

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for dep in sorted(graph[node]):
                if dep == start:
                    return trail + [start]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, trail + [dep]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert "evalsets" not in graph["params"] and "params" in graph["evalsets"]  # the pair that was a cycle


def test_gsm_symbolic_set_names_live_in_protocol():
    from eotd import evalsets, protocol

    assert evalsets.GSM_SYMBOLIC is protocol.GSM_SYMBOLIC
    assert set(protocol.GSM_SYMBOLIC) <= set(params._choices()["eval_sets"])
