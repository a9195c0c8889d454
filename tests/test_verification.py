"""The verification stage (02): every rationale 01 wrote (or a rationales_file holds) is verified once, and the
verified ones become the training splits that 03 reads."""
import json

import pytest
from chat_server import Action, ChatServer, default_usage

from eotd import params, synthesis, verification
from eotd.answers import to_json


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def tier(tmp_path, **values):
    path = tmp_path / "verif.yaml"
    values = {"train_dataset": "gsm_symbolic", "train_questions": 12, "teacher": "annotation", **values}
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))
    return params.load(path)


def test_verified_rationales_become_the_training_splits(env):
    p = tier(env)
    synthesis.run(p, progress=False)
    with pytest.raises(FileNotFoundError, match="run 02_verification first"):
        verification.load_train_splits(p)  # 03 before 02
    result = verification.run(p, progress=False)
    summary = json.loads((env / "results" / "verif" / "synthesis_summary.json").read_text())
    for thought, entry in summary["types"].items():
        assert entry["requested"] == 12 and sum(entry["reasons"].values()) == 12
        assert entry["kept"] <= entry["verified"] <= entry["generated"]
        assert entry["verified"] == result.summary[thought]["verified"]  # one verdict per rationale, in both files
    assert summary["types"]["cot"]["verified"] == 12  # the gold text itself
    splits = verification.load_train_splits(p)
    assert set(splits) == {"cot", "pot", "eot", "etd"}
    assert len(splits["etd"]) == sum(len(splits[t]) for t in ("cot", "pot", "eot")) == summary["etd_kept"]
    assert all(splits["etd"]["correct"]) and set(splits["etd"]["teacher_is_llm"]) == {False}
    verified = (env / "results" / "verif" / "verified.jsonl").read_text().splitlines()
    assert len(verified) == sum(entry["verified"] for entry in summary["types"].values())
    assert verification.train_split_files(p) and verification.run(p, progress=False).kept == result.kept
    assert json.loads((env / "results" / "verif" / "synthesis_summary.json").read_text()) == summary  # idempotent


def test_02_before_01_says_so(env):
    with pytest.raises(FileNotFoundError, match="run 01_data_synthesis first"):
        verification.run(tier(env), progress=False)


def test_a_type_with_nothing_verified_is_an_error_after_the_evidence(env):
    def wrong(body, hit):
        text = "The answer is nothing."
        tokens_in, tokens_out = default_usage(body, text)
        return Action(200, (), {"id": f"c{hit}", "choices": [{"message": {"role": "assistant", "content": text},
                                                              "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out}})

    with ChatServer(script=wrong) as server:
        p = tier(env, train_questions=2, teacher="openai", teacher_model="scripted",
                 teacher_base_url=server.base_url, teacher_concurrency=2)
        synthesis.run(p, progress=False)
    with pytest.raises(verification.VerificationError, match="no verified rationale for cot, pot, eot"):
        verification.run(p, progress=False)
    summary = json.loads((env / "results" / "verif" / "synthesis_summary.json").read_text())
    assert summary["types"]["cot"]["kept"] == 0 and summary["types"]["cot"]["reasons"] == {"no_answer": 2}
    assert not verification.train_folder(p).exists()  # no earlier splits left for 03 to train on


def test_a_float_gold_keeps_its_tolerance():
    p = params.validate({"name": "x"}, "test")
    row = {"thought": "cot", "rationale": "The answer is 14053029.67.", "gold": to_json(14053029.666666666)}
    assert verification.verify_rows([row], p, progress=False)[0]["correct"]


def test_a_rationales_file_is_verified_and_trained_on_instead(env):
    rows = [{"question_id": "q1", "question": "2 + 3?", "thought": t, "rationale": r, "gold": "5"}
            for t, r in [("cot", "2 + 3 = 5. The answer is 5."), ("pot", "ans = 2 + 3"), ("eot", "x = 2 + 3\nans = x"),
                         ("pot", "ans = 2 * 3")]]
    (env / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = tier(env, rationales_file=str(env / "mine.jsonl"))
    result = verification.run(p, progress=False)  # 01 never ran
    assert [r["correct"] for r in result.rows] == [True, True, True, False]
    assert verification.load_train_splits(p)["pot"]["rationale"] == ["ans = 2 + 3"]
    assert [(pr.id, pr.question, pr.answer) for pr in verification.training_problems(p)] == [("q1", "2 + 3?", 5)]
    assert synthesis.run(p, progress=False).rows == []  # 01 runs no teacher and says where the rationales come from
    verification.run(p, progress=False)
    summary = json.loads((env / "results" / "verif" / "synthesis_summary.json").read_text())
    assert summary["rationales_file"].endswith("mine.jsonl") and summary["questions"] == 1
    assert summary["types"]["pot"] == {"requested": 2, "generated": 2, "verified": 1, "kept": 1,
                                       "reasons": {"ok": 1, "wrong_answer": 1}}
    for bad, message in [({k: v for k, v in rows[0].items() if k != "question"}, r"mine.jsonl:1: missing field"),
                         ({**rows[0], "thought": "PoT"}, r"rationale 1: thought 'PoT' is not one of"),
                         ({**rows[0], "gold": "five"}, r"rationale 1: gold 'five' is not a number")]:
        (env / "mine.jsonl").write_text(json.dumps(bad) + "\n")
        with pytest.raises(ValueError, match=message):
            verification.run(p, progress=False)


def test_a_rationales_file_cannot_take_the_style_ablation_and_its_edits_rerun_the_study(tmp_path):
    from eotd import study

    (tmp_path / "mine.jsonl").write_text("{}\n")
    with pytest.raises(params.ParamsError, match="ablation_style_methods"):
        params.validate({"name": "x", "rationales_file": "mine.jsonl", "ablation_style_methods": ["PoTD"]}, "test")
    p = params.validate({"name": "x", "rationales_file": str(tmp_path / "mine.jsonl")}, "test")
    notebook = study.notebooks()[1]
    before = study.stage_key(notebook, p, "", "code")
    (tmp_path / "mine.jsonl").write_text('{"edited": true}\n')
    assert study.stage_key(notebook, p, "", "code") != before
