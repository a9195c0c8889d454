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


def test_from_namespace_reads_only_known_names():
    p = params.from_namespace({"name": "nb", "seed": 7, "In": [], "pd": object()})
    assert (p.name, p.seed) == ("nb", 7)


def test_paper_tier_needs_an_api_key_and_says_which(monkeypatch):
    from eotd import teachers
    from eotd.teachers.openai_compat import TeacherConfigError

    p = params.load(paths.PARAMS / "paper.yaml")
    assert (p.teacher, p.teacher_model, p.student) == ("openai", "gpt-3.5-turbo", "Salesforce/codet5p-770m-py")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(TeacherConfigError, match="OPENAI_API_KEY"):
        teachers.build(p)
