import re
from importlib import resources

import pytest

import eotd
from eotd import data
from eotd.prompts import THOUGHTS, Exemplar, Prompt, load, load_file

HEADERS = {
    "cot": "Let's think step by step.",
    "pot": "Let’s break down the code step by step",
    "eot": "System of linear equations: (Do not simplify)",
}
BENCHMARKS = ("gsm8k_test", "svamp", "asdiv", "multiarith", "gsm_hard")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("thought", THOUGHTS)
def test_packaged_prompt_shape(thought):
    prompt = load(thought)
    assert isinstance(prompt, Prompt) and prompt.thought == thought
    assert prompt.header == HEADERS[thought]
    assert prompt.system.strip()
    assert len(prompt.exemplars) == 8
    assert all(isinstance(ex, Exemplar) and ex.question and ex.answer and ex.rationale for ex in prompt.exemplars)
    assert len({_norm(ex.question) for ex in prompt.exemplars}) == 8
    assert re.fullmatch(r"[0-9a-f]{12}", prompt.version)
    assert load(thought) is prompt  # cached


def test_eot_system_is_xots_instruction():
    assert load("eot").system == ("Follow the examples and complete the equations for the question. "
                                  "Assume the value of the target answer as 'ans'. Make sure that 'ans' is a number.")


def test_every_exemplar_verifies_against_its_own_answer():
    items = [(t, ex.rationale, ex.answer) for t in THOUGHTS for ex in load(t).exemplars]
    verdicts = eotd.verify_many(items)
    bad = [(t, gold, v) for (t, _, gold), v in zip(items, verdicts) if not v.correct]
    assert not bad


def test_cot_rationales_end_with_the_answer_sentence():
    for ex in load("cot").exemplars:
        assert re.search(r"The answer is -?\$?[\d,]+(\.\d+)?\.$", ex.rationale), ex.question


def test_pot_rationales_assign_ans_and_do_not_print():
    for ex in load("pot").exemplars:
        assert re.search(r"^ans = ", ex.rationale, re.MULTILINE) and "print(" not in ex.rationale
        compile(ex.rationale, "<exemplar>", "exec")


def test_eot_rationales_follow_xots_format():
    exemplars = load("eot").exemplars
    genuine = 0
    for ex in exemplars:
        lines = ex.rationale.splitlines()
        assert "= x" in ex.rationale
        assert re.fullmatch(r"ans = [a-z_][a-z0-9_]*", lines[-1]), lines[-1]
        name = lines[-1].split("= ")[1]
        assert re.fullmatch(rf"% .+\? The answer is {name}:", lines[-2]), lines[-2]
        assert any(line.startswith("% ") for line in lines[:-2])
        # an equation whose left side is not a lone name, e.g. `packages + meals = 27`
        genuine += any(not line.startswith("%") and not re.fullmatch(r"[a-z_][a-z0-9_]* = .+", line)
                       for line in lines)
    assert genuine >= 3


def test_same_questions_for_all_thoughts():
    questions = [[ex.question for ex in load(t).exemplars] for t in THOUGHTS]
    assert questions[0] == questions[1] == questions[2]
    answers = [[ex.answer for ex in load(t).exemplars] for t in THOUGHTS]
    assert answers[0] == answers[1] == answers[2]


def test_exemplars_are_not_benchmark_test_questions(shared_data):
    test_questions = {_norm(p.question) for name in BENCHMARKS for p in data.load(name, shared_data)}
    assert len(test_questions) > 1000
    for thought in THOUGHTS:
        for ex in load(thought).exemplars:
            assert _norm(ex.question) not in test_questions, ex.question


def test_unknown_thought_names_the_valid_ones():
    with pytest.raises(ValueError, match="cot, pot, eot"):
        load("tot")


def test_version_is_stable_and_follows_the_bytes(tmp_path):
    src = tmp_path / "eot.yaml"
    src.write_bytes((resources.files("eotd.prompts") / "eot.yaml").read_bytes())
    first = load_file(src)
    assert first.version == load("eot").version == load_file(src).version
    assert first == load("eot")
    src.write_text(src.read_text(encoding="utf-8").replace("Mia had $54 left", "Mia had $55 left", 1),
                   encoding="utf-8")
    edited = load_file(src)
    assert edited.version != first.version and edited.exemplars != first.exemplars
    src.write_bytes(src.read_bytes() + b"# only a comment\n")  # same content, new bytes: a new version
    assert load_file(src).version not in (first.version, edited.version)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.replace("header:", "headr:"), "header"),
    (lambda d: d.replace("    answer: \"90\"", "    answer: \"\""), "exemplars[6].answer"),
    (lambda d: d.replace("thought: eot", "thought: tot"), "thought"),
    (lambda d: d.replace("exemplars:", "exemplars: 3\nunused:"), "exemplars"),
])
def test_malformed_file_names_file_and_field(tmp_path, edit, field):
    good = (resources.files("eotd.prompts") / "eot.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "broken.yaml"
    bad.write_text(edit(good), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(field)) as err:
        load_file(bad)
    assert "broken.yaml" in str(err.value)


def test_non_mapping_file_is_rejected(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list.yaml"):
        load_file(bad)


@pytest.mark.parametrize("thought", THOUGHTS)
def test_messages_structure(thought):
    prompt = load(thought)
    msgs = prompt.messages("How many apples are left?")
    assert len(msgs) == 2 + 2 * len(prompt.exemplars)
    assert msgs[0] == {"role": "system", "content": prompt.system}
    roles = [m["role"] for m in msgs[1:]]
    assert roles == ["user", "assistant"] * len(prompt.exemplars) + ["user"]
    for ex, user, assistant in zip(prompt.exemplars, msgs[1::2], msgs[2::2]):
        assert user["content"] == f"Question: {ex.question}\n{prompt.header}"
        assert assistant["content"] == ex.rationale
    assert msgs[-1]["content"] == f"Question: How many apples are left?\n{prompt.header}"


@pytest.mark.parametrize("thought", THOUGHTS)
def test_text_structure(thought):
    prompt = load(thought)
    text = prompt.text("How many apples are left?")
    assert text.endswith(f"\n\nQuestion: How many apples are left?\n{prompt.header}\n")
    assert text.startswith(f"Question: {prompt.exemplars[0].question}\n{prompt.header}\n{prompt.exemplars[0].rationale}\n\n")
    assert text.count("Question: ") == len(prompt.exemplars) + 1
    for ex in prompt.exemplars:
        assert f"Question: {ex.question}\n{prompt.header}\n{ex.rationale}\n\n" in text


def test_parse_strips_fences_headers_and_continuations():
    pot, cot, eot = load("pot"), load("cot"), load("eot")
    code = "apples = 5\nans = apples - 2"
    assert pot.parse(f"\n```python\n{code}\n```\n") == code
    assert pot.parse(f"{pot.header}\n```py\n{code}\n```\nThis program prints 3.") == code
    assert pot.parse(f"Here is the program:\n```\n{code}\n```") == code
    assert pot.parse("Let's break down the code step by step\n" + code) == code  # straight apostrophe too
    assert pot.parse(f"  {code}  \n\nQuestion: Tom has 4 pens.\n{pot.header}\npens = 4") == code
    assert cot.parse(f"{cot.header}\nThere are 3 left. The answer is 3.\n\nQuestion: next one") == \
        "There are 3 left. The answer is 3."
    eq = "% Assume x apples:\napples = x\napples + 2 = 5\n% How many? The answer is apples:\nans = apples"
    assert eot.parse(f"{eot.header}\n\n\n{eq}\nQuestion: A farm has 3 cows.") == eq
    assert eot.parse(f"```\n{eq}\n```") == eq
    assert cot.parse("   The answer is 7.   ") == "The answer is 7."


def test_parsed_exemplars_round_trip():
    for thought in THOUGHTS:
        prompt = load(thought)
        for ex in prompt.exemplars:
            assert prompt.parse(f"{prompt.header}\n{ex.rationale}\n\nQuestion: {ex.question}") == ex.rationale
