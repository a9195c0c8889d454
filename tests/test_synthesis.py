"""The synthesis stage (01) end to end: teacher -> cache -> raw rationales, with real teachers and a real loopback
server; a killed run resumes and ends identical to an uninterrupted one. 02 verifies them (test_verification)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from chat_server import ChatServer

from eotd import params, synthesis

SMOKE = {"train_dataset": "gsm_symbolic", "train_questions": 12, "teacher": "annotation"}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def tier(tmp_path, name="synth", **values):
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in {**SMOKE, **values}.items()))
    return path


def gold_replies(n=12, delay=0.0):
    """A server script that answers each training question with `ans = <gold>` (verifies as CoT, PoT and EoT), so
    the stage has data to keep; usage is counted like the default replies."""
    from chat_server import Action, default_usage, last_user

    problems = synthesis.training_problems(params.validate({"name": "x", **SMOKE, "train_questions": n}, "gold"))
    gold = {p.question: p.answer for p in problems}

    def script(body, hit):
        user = last_user(body)
        answer = next((g for q, g in gold.items() if q in user), 0)
        text = f"ans = {answer}"
        tokens_in, tokens_out = default_usage(body, text)
        return Action(200, (), {"id": f"c{hit}", "choices": [{"message": {"role": "assistant", "content": text},
                                                              "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out}}, delay)
    return script


def openai_values(server, **extra):
    return {"teacher": "openai", "teacher_model": "scripted", "teacher_base_url": server.base_url,
            "teacher_concurrency": 2, **extra}


def test_annotation_teacher_run_writes_rationales_and_the_teachers_summary(env):
    p = params.load(tier(env))
    result = synthesis.run(p, progress=False)
    summary = json.loads((env / "results" / "synth" / "synthesis_summary.json").read_text())
    assert summary["teacher"].startswith("annotation:") and summary["teacher_is_llm"] is False
    assert summary["types"] == {t: {"requested": 12, "generated": 12} for t in ("cot", "pot", "eot")}
    assert len(result.rows) == 36 and not any("correct" in row for row in result.rows)  # 02 verifies
    assert synthesis.read_rationales(p) == json.loads(json.dumps(result.rows))
    assert summary["outputs"]["rationales_jsonl"].endswith("synthesis/synth/rationales.jsonl")


def test_rerun_makes_no_new_teacher_call(env):
    with ChatServer(script=gold_replies()) as server:
        p = params.load(tier(env, **openai_values(server)))
        first = synthesis.run(p, progress=False)
        hits = server.hits
        assert hits == 36 and first.summary["new_teacher_calls"] == 36
        second = synthesis.run(p, progress=False)
        assert server.hits == hits  # everything came from the cache
        assert second.summary["new_teacher_calls"] == 0
        assert second.rows == first.rows
        assert second.summary["tokens"] == first.summary["tokens"] and first.summary["tokens"]["total"] > 0


def test_budget_cap_stops_cleanly(env):
    with ChatServer(script=gold_replies()) as server:
        p = params.load(tier(env, **openai_values(server, price_input_per_m=1000.0, price_output_per_m=1000.0,
                                                  budget_usd=20.0)))
        result = synthesis.run(p, progress=False)
    assert result.summary["stopped_by_budget"] is True
    assert server.hits < 36
    assert result.summary["cost"] <= 20.0
    not_asked = [r for r in result.rows if r["error"] == "not_requested"]
    assert len(not_asked) == 36 - server.hits and all(r["rationale"] is None for r in not_asked)


def _run_cli(params_file, env_dir, cache):
    environ = {**os.environ, "EOTD_RESULTS_DIR": str(env_dir / "results"), "EOTD_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "eotd.synthesis", str(params_file)], env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_killed_run_resumes_to_the_same_dataset(env):
    with ChatServer(script=gold_replies(delay=0.05)) as server:
        path = tier(env, **openai_values(server))
        proc = _run_cli(path, env, env / "cache")
        deadline = time.monotonic() + 120
        while server.hits < 12 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = server.hits
        assert 12 <= before < 36, "the run was not killed half-way"
        assert _run_cli(path, env, env / "cache").wait(timeout=300) == 0
        resumed_hits = server.hits - before
        # only the requests in flight at the kill are asked again
        assert before + resumed_hits <= 36 + 2
        resumed = (env / "cache" / "synthesis" / "synth" / "rationales.jsonl").read_text()

        assert _run_cli(path, env, env / "fresh-cache").wait(timeout=300) == 0
        fresh = (env / "fresh-cache" / "synthesis" / "synth" / "rationales.jsonl").read_text()
    assert resumed == fresh


def test_local_transformers_teacher_samples_and_caches(env):
    """A random-weight tiny model writes nonsense; what matters here is that it samples k rationales per question
    through the cache."""
    p = params.load(tier(env, train_questions=2, teacher="transformers", teacher_model="tiny-llama",
                         teacher_max_tokens=12, samples_per_question=2, teacher_batch_size=4))
    first = synthesis.run(p, progress=False).summary
    assert first["teacher"] == "transformers:tiny-llama" and first["teacher_is_llm"] is True
    assert first["new_teacher_calls"] == 12 and first["tokens"]["output"] > 0
    assert all(t["generated"] == 4 for t in first["types"].values())
    second = synthesis.run(p, progress=False).summary
    assert second["new_teacher_calls"] == 0 and second["tokens"] == first["tokens"]


def test_every_call_failing_is_an_error_and_a_non_zero_exit(env):
    from chat_server import rate_limited

    with ChatServer(script=lambda body, hit: rate_limited(0)) as server:
        path = tier(env, train_questions=2, teacher_max_retries=1, **openai_values(server))
        with pytest.raises(synthesis.SynthesisError, match="the teacher wrote no rationale for cot, pot, eot"):
            synthesis.run(params.load(path), progress=False)
        summary = json.loads((env / "results" / "synth" / "synthesis_summary.json").read_text())
        assert summary["types"]["cot"] == {"requested": 2, "generated": 0}  # the evidence is written before the error
        proc = subprocess.run([sys.executable, "-m", "eotd.synthesis", str(path)], capture_output=True, text=True,
                              env={**os.environ, "EOTD_RESULTS_DIR": str(env / "results"),
                                   "EOTD_CACHE_DIR": str(env / "cache")}, timeout=300)
    assert proc.returncode != 0 and "wrote no rationale" in proc.stderr and "teacher errors: " in proc.stderr
