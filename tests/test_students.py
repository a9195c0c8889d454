"""The student layer on the tiny model: method training, cached predictions, model cards, and the ablation grid."""
import pytest
from transformers import AutoModelForCausalLM

import json
import shutil
import weakref

from eotd import ablations, evaluate, generation, infer, model_cards, models, params, protocol, students, train
from eotd.data import Problem


@pytest.fixture(scope="module")
def llama_tokenizer():
    return models.load("tiny-llama")[1]


@pytest.fixture
def p(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    return params.validate({"name": "unit", "student": "tiny-llama", "methods": ["CoTD", "ETD"], "epochs": 1.0,
                            "lr": 1e-3, "batch_size": 4, "max_new_tokens": 8, "checkpoint_every": 2,
                            "isolate_students": False}, "test")


def rows(thoughts=("cot", "pot", "eot"), questions=4, samples=1):
    rationale = {"cot": "3 + 4 = 7. The answer is 7.", "pot": "ans = 3 + 4", "eot": "total = x\ntotal = 3 + 4\nans = total"}
    return [{"question_id": f"q{i}", "question": f"Tom has 3 apples and gets {i} more. How many?", "thought": t,
             "rationale": rationale[t], "sample_index": k}
            for i in range(questions) for t in thoughts for k in range(samples)]


def splits():
    etd = rows()
    return {t: [r for r in etd if r["thought"] == t] for t in ("cot", "pot", "eot")} | {"etd": etd}


def test_methods_train_into_loadable_folders_with_model_cards(p):
    results = students.train_methods(p, splits(), progress=False)
    assert set(results) == {"CoTD@0", "ETD@0"}  # one seed each: the run's
    for label, result in results.items():
        AutoModelForCausalLM.from_pretrained(result.path)
        card = (result.path / "README.md").read_text()
        assert f"# {label[:-2]} student distilled from `tiny-llama`" in card and "data hash" in card
        assert "Training seed (data order): 0" in card
    losses = students.losses_frame(results)
    assert set(losses.method) == {"CoTD@0", "ETD@0"} and {"step", "loss"} <= set(losses.columns)


def test_each_student_is_freed_before_the_next_one_loads(p, monkeypatch):
    """No result keeps a trained model: when a student loads, the models and weights of those before it are gone (no
    gc.collect here: training frees them itself), and the last one once train_methods returns."""
    three = params.validate({**p.to_dict(), "methods": ["CoTD", "PoTD", "ETD"]}, "test")
    load, refs, alive_at_load = models.load, [], []

    def tracked(*args, **kwargs):
        alive_at_load.append([ref() is not None for ref in refs])
        model, tokenizer = load(*args, **kwargs)
        refs.extend([weakref.ref(model), weakref.ref(next(model.parameters()))])
        return model, tokenizer

    monkeypatch.setattr(models, "load", tracked)
    results = students.train_methods(three, splits(), progress=False)
    assert len(results) == 3 and all(r.steps for r in results.values())
    assert alive_at_load == [[], [False] * 2, [False] * 4]
    assert [ref() for ref in refs] == [None] * 6


def test_training_seeds_change_the_data_order_and_nothing_else(p):
    seeded = params.validate({**p.to_dict(), "methods": ["CoTD"], "train_seeds": {"CoTD": [3, 4]}}, "test")
    assert students.labels(seeded) == {"CoTD@3": ("CoTD", 3), "CoTD@4": ("CoTD", 4)}
    results = students.train_methods(seeded, splits(), progress=False)
    assert set(results) == {"CoTD@3", "CoTD@4"}
    done = {label: json.loads((r.path.parent / protocol.DONE_FILE).read_text()) for label, r in results.items()}
    configs = {label: d["config"] for label, d in done.items()}
    assert configs["CoTD@3"]["seed"] == 3 and configs["CoTD@4"]["seed"] == 4
    assert {k: v for k, v in configs["CoTD@3"].items() if k != "seed"} == \
        {k: v for k, v in configs["CoTD@4"].items() if k != "seed"}
    assert done["CoTD@3"]["data_hash"] == done["CoTD@4"]["data_hash"]  # the same rows
    examples = [{"input_ids": [1] * (5 + i % 7), "labels": [1] * (5 + i % 7)} for i in range(40)]
    orders = [train.batches(examples, 4, seed, 0) for seed in (3, 4)]
    assert orders[0] != orders[1]  # another order ...
    assert sorted(i for b in orders[0] for i in b) == sorted(i for b in orders[1] for i in b) == list(range(40))


def test_predictions_are_cached_per_model(p, monkeypatch, tmp_path):
    students.train_methods(p, splits(), progress=False)
    sets = {"toy": [Problem("t1", "toy", "Tom has 3 apples and gets 4 more. How many?", 7)]}
    path = str(students.student_dir(p, "ETD@0") / "final")
    first = generation.predict(p, "ETD@0", path, sets, protocol.METHODS["ETD"], progress=False)
    assert [r["thought"] for r in first] == ["cot", "pot", "eot"]
    calls = []
    monkeypatch.setattr(infer, "generate", lambda *a, **k: calls.append(a) or [])
    assert generation.predict(p, "ETD@0", path, sets, protocol.METHODS["ETD"], progress=False) == first
    assert not calls  # nothing generated the second time
    moved = tmp_path / "moved-cache"  # a moved project (or a cache shared by two clones) keeps its generations
    shutil.copytree(tmp_path / "cache", moved)
    monkeypatch.setenv("EOTD_CACHE_DIR", str(moved))
    path = str(students.student_dir(p, "ETD@0") / "final")
    assert generation.predict(p, "ETD@0", path, sets, protocol.METHODS["ETD"], progress=False) == first
    assert not calls


def test_model_cards_get_the_evaluation_table(p):
    students.train_methods(p, splits(), progress=False)
    combined = [{"dataset": "toy", "method": "ETD@0", "question_id": "t1", "strategy": "vote", "correct": True}]
    model_cards.update(students.final_dirs(p), evaluate.accuracy_by_seed(combined))
    model_cards.update(students.final_dirs(p), evaluate.accuracy_by_seed(combined))  # replaces, never appends twice
    card = (students.student_dir(p, "ETD@0") / "final" / "README.md").read_text()
    assert card.count("## Evaluation") == 1 and "| toy" in card


def test_ablation_grid_reuses_main_students():
    p = params.validate({"name": "unit", "ablation_sizes": [0.5, 1.0], "ablation_size_methods": ["ETD"]}, "test")
    grid = ablations.variants(p, splits())
    mixes = [v for v in grid if v.ablation == "thought_mix"]
    assert [v.variant for v in mixes] == ["cot", "pot", "eot", "cot+pot", "cot+eot", "pot+eot", "cot+pot+eot"]
    assert {v.variant: v.label for v in mixes}["cot+pot+eot"] == "ETD@0"  # the main students (the run's seed)
    assert {v.variant: v.label for v in mixes}["pot"] == "PoTD@0"
    sizes = {v.variant: v for v in grid if v.ablation == "data_size"}
    assert sizes["ETD 100%"].label == "ETD@0" and len(sizes["ETD 50%"].rows) == 6  # 2 of 4 questions x 3 thoughts
    assert not [v for v in grid if v.ablation == "rationales_per_question"]  # one sample per question


def test_rationales_per_question_ablation_when_teacher_sampled():
    p = params.validate({"name": "unit", "ablation_thought_mixes": False, "ablation_size_methods": []}, "test")
    sampled = {"etd": rows(samples=3)}
    grid = ablations.variants(p, sampled)
    assert [(v.variant, len(v.rows)) for v in grid] == [("k=1", 12), ("k=3", 36)]


def test_etd_at_the_single_format_budget():
    p = params.validate({"name": "unit", "etd_data": "one_per_question"}, "test")
    data = rows(questions=30)
    data = [r for r in data if not (r["question_id"] == "q1" and r["thought"] == "pot")]  # one type not verified
    etd = students.training_rows(p, {"etd": data}, "ETD")
    assert sorted(r["question_id"] for r in etd) == sorted({r["question_id"] for r in data})  # each question once
    counts = {t: sum(r["thought"] == t for r in etd) for t in ("cot", "pot", "eot")}
    assert min(counts.values()) >= 9 and max(counts.values()) <= 11  # dealt round-robin
    assert etd == students.training_rows(p, {"etd": data}, "ETD")  # seeded
    union = params.validate({"name": "unit"}, "test")
    assert students.training_rows(union, {"etd": data}, "ETD") == data  # the paper's union


def test_union_etd_holds_every_verified_rationale_with_its_trigger(llama_tokenizer):
    union = params.validate({"name": "unit", "etd_data": "union"}, "test")
    data = rows(questions=5)
    etd = students.training_rows(union, {"etd": data}, "ETD")
    assert sorted((r["question_id"], r["thought"]) for r in etd) == \
        sorted((f"q{i}", t) for i in range(5) for t in ("cot", "pot", "eot"))  # each question in every type
    examples = train.build_examples(etd, llama_tokenizer, False, train.TrainConfig())
    for row, example in zip(etd, examples):
        prompt = llama_tokenizer.decode([i for i, label in zip(example["input_ids"], example["labels"]) if label == -100])
        assert prompt.rstrip().endswith(protocol.TRIGGERS[row["thought"]])  # learned with its own trigger


def test_token_budget_follows_training_lengths(p):
    budget = generation.token_budget(p, splits())
    assert set(budget) == {"cot", "pot", "eot"} and all(0 < n <= p.max_new_tokens for n in budget.values())
    wide = params.validate({**p.to_dict(), "max_new_tokens": 500}, "test")
    long_cot = splits()
    long_cot["etd"] = [r | {"rationale": r["rationale"] * 5} if r["thought"] == "cot" else r for r in long_cot["etd"]]
    budget = generation.token_budget(wide, long_cot)
    assert budget["cot"] > budget["pot"]  # prose needs more tokens than a program


def test_rationale_style_ablation_pairs_the_same_questions():
    from eotd.data import load_gsm_symbolic
    from eotd.teachers.annotation import convert

    problems = list(load_gsm_symbolic(12, 0, "train", "template", 0.2))
    p = params.validate({"name": "unit", "train_questions": 12, "ablation_thought_mixes": False,
                         "ablation_size_methods": [], "ablation_style_methods": ["PoTD"]}, "test")
    pot = []
    for pr in problems:
        try:
            pot.append({"question_id": pr.id, "question": pr.question, "thought": "pot", "sample_index": 0,
                        "rationale": convert(pr.solution, "pot", pr.question)})
        except ValueError:
            pass
    grid = ablations.variants(p, {"pot": pot, "etd": pot})
    executor, commented = grid
    assert (executor.variant, commented.variant) == ("PoTD executor", "PoTD commented")
    assert executor.label == "PoTD@0" and commented.label == "PoTD:commented"
    assert [r["question_id"] for r in executor.rows] == [r["question_id"] for r in commented.rows]
    for plain, noted in zip(executor.rows, commented.rows):
        assert noted["rationale"].startswith("# ") and not plain["rationale"].startswith("#")
        assert [line for line in noted["rationale"].splitlines() if not line.startswith("#")] == \
            plain["rationale"].splitlines()
        assert noted["correct"]  # verified like 01


def test_students_command_trains_every_method_of_a_params_file(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from eotd import synthesis, verification

    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    tier = tmp_path / "cli.yaml"
    tier.write_text("train_questions: 4\nstudent: tiny-llama\nmethods: [PoTD, ETD]\nlr: 0.001\nbatch_size: 4\n")
    synthesis.run(params.load(tier), progress=False)
    verification.run(params.load(tier), progress=False)

    def command():
        return subprocess.run([sys.executable, "-m", "eotd.students", str(tier)], env=dict(os.environ),
                              capture_output=True, text=True, timeout=300)

    first = command()
    assert first.returncode == 0, first.stderr[-2000:]
    assert "PoTD@0: " in first.stdout and "ETD@0: " in first.stdout
    for method in ("PoTD", "ETD"):
        assert (tmp_path / "cache" / "students" / "cli" / f"{method}@0" / "final" / "README.md").exists()
    assert command().stdout.count("(reused)") == 2


def test_two_process_training_matches_one_process_and_resumes_when_killed(tmp_path, monkeypatch):
    """`accelerate launch --cpu --num_processes 2 -m eotd.students` (gloo) trains every method once; its loss curve
    follows a 1-process run with the same global batch: accelerate splits each batch across the processes and
    averages their gradients (measured: the two curves agree to 4 decimals; the bound is 1e-3 relative). Killed
    (SIGKILL to both processes) after a checkpoint, a new launch resumes from it and ends on the same curve."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from eotd import synthesis, verification

    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    common = "train_questions: 16\nstudent: tiny-llama\nlr: 0.001\nbatch_size: 4\nepochs: 4.0\n"
    tiers = {"two": "methods: [PoTD, ETD]\netd_data: one_per_question\ncheckpoint_every: 0\n",
             "one": "methods: [PoTD]\ncheckpoint_every: 0\n", "killed": "methods: [PoTD]\ncheckpoint_every: 1\n"}
    for name, extra in tiers.items():
        (tmp_path / f"{name}.yaml").write_text(common + extra)
        synthesis.run(params.load(tmp_path / f"{name}.yaml"), progress=False)
        verification.run(params.load(tmp_path / f"{name}.yaml"), progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launch = [str(Path(sys.executable).with_name("accelerate")), "launch", "--cpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "eotd.students"]
    launched = subprocess.run(launch + [str(tmp_path / "two.yaml")], env=env, capture_output=True, text=True,
                              timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    # the main process alone reports (a line per method) and draws the progress lines
    assert [line.split(":")[0] for line in launched.stdout.splitlines() if not line.startswith("train ")] == [
        "PoTD@0", "ETD@0"]
    assert sum(line.startswith("train ") for line in launched.stdout.splitlines()) == 2
    single = subprocess.run([sys.executable, "-m", "eotd.students", str(tmp_path / "one.yaml")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    students_dir = tmp_path / "cache" / "students"
    for method in ("PoTD", "ETD"):
        folder = students_dir / "two" / f"{method}@0"
        assert (folder / "final" / "model.safetensors").exists() and (folder / "final" / "README.md").exists()
        assert not (folder / "checkpoint").exists() and not list(folder.glob(".*tmp"))
    done2 = json.loads((students_dir / "two" / "PoTD@0" / "done.json").read_text())
    losses1 = json.loads((students_dir / "one" / "PoTD@0" / "done.json").read_text())["losses"]
    losses2 = done2["losses"]
    assert len(losses1) == len(losses2) > 2 and done2["resumed_from_step"] == 0
    for a, b in zip(losses1, losses2):
        assert a["tokens"] == b["tokens"]  # the same examples in every step
        assert abs(a["loss"] - b["loss"]) <= 1e-3 * abs(a["loss"]), (losses1, losses2)

    killed = students_dir / "killed" / "PoTD@0"
    run = subprocess.Popen(launch + [str(tmp_path / "killed.yaml")], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    state_file = killed / "checkpoint" / "eotd_train_state.json"
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:  # the run goes on in slices of 20 ms, frozen between
        time.sleep(0.02)  # them while the test reads its checkpoint: it cannot finish unseen
        os.killpg(run.pid, signal.SIGSTOP)
        if state_file.exists() and json.loads(state_file.read_text())["step"] >= 2:
            break
        os.killpg(run.pid, signal.SIGCONT)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    assert not (killed / "final").exists(), "training ended before it could be killed"
    at_kill = json.loads(state_file.read_text())["step"]
    resumed = subprocess.run(launch + [str(tmp_path / "killed.yaml")], env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = json.loads((killed / "done.json").read_text())
    assert 2 <= done["resumed_from_step"] == at_kill < len(losses2)
    assert [x["step"] for x in done["losses"]] == [x["step"] for x in losses2]
    for a, b in zip(losses2, done["losses"]):
        assert a["tokens"] == b["tokens"] and abs(a["loss"] - b["loss"]) <= 1e-4 * abs(a["loss"]), (losses2, done)
    assert not (killed / "checkpoint").exists()


def test_a_served_student_gives_the_in_process_predictions(p, tmp_path):
    """Evaluation through an OpenAI-compatible completions endpoint (a real loopback server serving the tiny
    student through transformers) equals in-process generation, and lands in its own prediction cache."""
    from completions_server import CompletionsServer

    from eotd.data import load_gsm_symbolic

    trained = students.train_methods(params.validate({**p.to_dict(), "lr": 3e-3, "epochs": 6.0}, "test"),
                                     splits(), progress=False)
    folder = str(trained["ETD@0"].path)
    sets = {"gsm_symbolic": list(load_gsm_symbolic(4, seed=3))}
    budget = {"cot": 12, "pot": 10, "eot": 8}
    local = generation.predict(p, "ETD", folder, sets, protocol.METHODS["ETD"], progress=False, max_new_tokens=budget)
    with CompletionsServer(folder, name="eotd-ETD") as server:
        remote_p = params.validate({**p.to_dict(), "student_base_url": server.base_url,
                                    "student_model": "eotd-{method}", "student_concurrency": 2}, "test")
        remote = generation.predict(remote_p, "ETD", folder, sets, protocol.METHODS["ETD"], progress=False,
                                  max_new_tokens=budget)
        assert server.hits == 12
        again = generation.predict(remote_p, "ETD", folder, sets, protocol.METHODS["ETD"], progress=False,
                                 max_new_tokens=budget)
        assert server.hits == 12 and again == remote  # cached
    assert [r["raw_output"] for r in remote] == [r["raw_output"] for r in local]
    assert len({r["raw_output"] for r in local}) > 1


def test_a_served_student_that_is_not_there_fails_with_its_name(p):
    from completions_server import CompletionsServer

    from eotd.data import Problem

    trained = students.train_methods(p, splits(), progress=False)
    folder = str(trained["CoTD@0"].path)
    with CompletionsServer(folder, name="something-else") as server:
        remote_p = params.validate({**p.to_dict(), "student_base_url": server.base_url}, "test")
        with pytest.raises(Exception, match="CoTD"):
            generation.predict(remote_p, "CoTD", folder, {"toy": [Problem("t1", "toy", "2 + 2?", 4)]}, ("cot",),
                             progress=False)


def test_etd_generated_as_needed_gives_the_fallback_of_every_thought(p):
    """Scripted ETD outputs through a real loopback server: PoT answers q0-q2 (q2 wrongly), EoT q3, CoT q4, nothing
    q5. As needed, the student writes PoT for all six, EoT only for q3-q5 and CoT only for q4-q5; the fallback rows
    are those of writing every thought, and the per-thought and vote rows are not formed from the subset."""
    from completions_server import CompletionsServer

    script = {"pot": {0: "ans = 0 + 1", 1: "ans = 1 + 1", 2: "ans = 99"},
              "eot": {3: "total = x\ntotal = 3 + 1\nans = total"}, "cot": {4: "4 + 1 = 5. The answer is 5."}}
    triggers = {trigger: thought for thought, trigger in protocol.TRIGGERS.items()}

    def reply(prompt: str, max_tokens: int) -> str:
        question, trigger = prompt.strip().split("\n")
        i = int(question.split()[3])  # "Question: What is 3 + 1 ?"
        return script[triggers[trigger]].get(i, "ans = (")

    sets = {"toy": [Problem(f"q{i}", "toy", f"What is {i} + 1 ?", i + 1) for i in range(6)]}
    folder, budget = generation.models.resolve("tiny-llama"), {"cot": 12, "pot": 10, "eot": 10}
    with CompletionsServer(None, name="ETD", reply=reply) as server:
        served = params.validate({**p.to_dict(), "student_base_url": server.base_url, "etd_generation": "fallback"},
                                 "test")
        lazy = generation.predict_as_needed(served, "ETD@0", folder, sets, protocol.METHODS["ETD"], progress=False,
                                          max_new_tokens=budget)
        assert server.hits == 11
        assert sorted((r["question_id"], r["thought"]) for r in lazy) == sorted(
            [(f"q{i}", "pot") for i in range(6)] + [("q3", "eot"), ("q4", "eot"), ("q5", "eot"),
                                                   ("q4", "cot"), ("q5", "cot")])
        every = generation.predict(served, "ETD@0", folder, sets, protocol.METHODS["ETD"], progress=False,
                                 max_new_tokens=budget)
        assert server.hits == 18  # the 11 written as needed come from the cache
    _, lazy_rows, lazy_acc = evaluate.run(lazy, served)
    _, every_rows, every_acc = evaluate.run(every, served)
    fallback = protocol.fallback_strategy(protocol.DEFAULT_FALLBACK)
    assert set(lazy_acc.strategy) == {fallback} and {"cot", "pot", "eot", "vote", fallback} <= set(every_acc.strategy)
    assert lazy_rows == [r for r in every_rows if r["strategy"] == fallback]
    assert [r["correct"] for r in lazy_rows] == [True, True, False, True, True, False]
