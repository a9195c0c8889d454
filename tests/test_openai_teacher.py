"""OpenAITeacher against a real HTTP server on 127.0.0.1 (tests/chat_server.py)."""
from __future__ import annotations

import json
import logging
import time

import pytest

from chat_server import (
    ChatServer, default_reply, disconnect, endless_chunks, last_user, lone_surrogate, malformed, nested_json,
    no_choices, not_found, ok, rate_limited, server_error, slow, status, trickle_body, trickle_headers, unauthorized,
)
from eotd.served import ServedStudent
from eotd.teachers.base import Completion, Request
from eotd.teachers.openai_compat import OpenAITeacher, TeacherConfigError, request_seed

KEY_ENV = "EOTD_TEST_OPENAI_KEY"
KEY = "sk-test-SECRET-1234567890"


def messages_for(request: Request) -> list[dict]:
    return [{"role": "system", "content": f"Write a {request.thought} rationale."},
            {"role": "user", "content": request.question}]


def make(server: ChatServer, **kwargs) -> OpenAITeacher:
    options = dict(model="test-model", base_url=server.base_url, api_key_env=KEY_ENV, timeout=5.0,
                   backoff_base=0.01, backoff_cap=0.05, max_retries=3, concurrency=4, messages_for=messages_for)
    options.update(kwargs)
    return OpenAITeacher(**options)


def reqs(n: int, samples: int = 1, thought: str = "cot") -> list[Request]:
    return [Request(f"q{i}", f"Question number {i}: what is {i} + {i}?", thought, s)
            for i in range(n) for s in range(samples)]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def run(teacher: OpenAITeacher, requests) -> dict:
    return {(r.question_id, r.sample_index): c for r, c in teacher.complete(requests)}


def test_completions_tokens_and_cost():
    # later questions answer first, so completion order differs from request order
    script = lambda body, hit: ok(delay=0.2 if "number 0:" in last_user(body) else 0.0)
    with ChatServer(script=script) as server:
        teacher = make(server, price_input_per_m=2.0, price_output_per_m=8.0)
        requests = reqs(10)
        order = [r.question_id for r, _ in teacher.complete(requests)]
        log = server.log
    assert sorted(order) == sorted(r.question_id for r in requests) and order[-1] == "q0"
    assert len(log) == 10 and all(e.status == 200 for e in log)
    body = log[0].body
    assert body["model"] == "test-model" and body["n"] == 1 and body["max_tokens"] == 512
    assert body["temperature"] == 0.7 and isinstance(body["seed"], int)
    assert body["messages"][-1]["role"] == "user"
    # tokens as the server reported them; cost from the prices
    from chat_server import default_usage
    expected_in = sum(default_usage(e.body, default_reply(e.body))[0] for e in log)
    expected_out = sum(default_usage(e.body, default_reply(e.body))[1] for e in log)
    assert teacher.usage.requests == 10
    assert (teacher.usage.input_tokens, teacher.usage.output_tokens) == (expected_in, expected_out)
    assert teacher.usage.cost == pytest.approx((expected_in * 2.0 + expected_out * 8.0) / 1e6)
    assert not teacher.usage.stopped_by_budget


def test_reply_text_is_returned():
    with ChatServer(reply=lambda body: "The answer is 42.") as server:
        ((request, completion),) = list(make(server).complete(reqs(1)))
    assert completion.text == "The answer is 42." and completion.error == ""
    assert completion.input_tokens > 0 and completion.output_tokens > 0


def test_retry_after_is_honoured():
    with ChatServer(script=[rate_limited(retry_after=1)]) as server:
        teacher = make(server, backoff_base=0.01, backoff_cap=5.0)
        ((_, completion),) = list(teacher.complete(reqs(1)))
        log = server.log
    assert completion.text is not None
    assert [e.status for e in log] == [429, 200]
    assert log[1].arrived - log[0].finished >= 0.95  # waited for Retry-After, not the 0.01 s backoff


def test_server_errors_then_success():
    with ChatServer(script=[server_error(500), server_error(503)]) as server:
        ((_, completion),) = list(make(server).complete(reqs(1)))
        server.wait_idle()
        statuses = [e.status for e in server.log]
    assert completion.text is not None and statuses == [500, 503, 200]


@pytest.mark.parametrize("bad", [malformed, no_choices, disconnect])
def test_malformed_or_dropped_then_success(bad):
    with ChatServer(script=[bad()]) as server:
        teacher = make(server)
        ((_, completion),) = list(teacher.complete(reqs(1)))
        hits = server.hits
    assert completion.text is not None and hits == 2
    assert teacher.usage.requests == 1


def test_permanent_failure_yields_error_after_max_retries():
    with ChatServer(script=lambda body, hit: server_error(500)) as server:
        teacher = make(server, max_retries=3)
        results = run(teacher, reqs(1))
        hits = server.hits
    completion = results[("q0", 0)]
    assert completion.text is None and "500" in completion.error and "4 attempts" in completion.error
    assert hits == 4  # max_retries + 1
    assert teacher.usage.requests == 0 and teacher.usage.cost == 0


def test_one_failing_question_does_not_stop_the_run():
    script = lambda body, hit: server_error(502) if "number 3:" in last_user(body) else None
    with ChatServer(script=script) as server:
        results = run(make(server, max_retries=2), reqs(6))
    assert len(results) == 6
    assert results[("q3", 0)].text is None and "502" in results[("q3", 0)].error
    assert all(c.text for k, c in results.items() if k != ("q3", 0))


def test_other_4xx_is_not_retried_and_key_is_scrubbed():
    with ChatServer(script=[status(400, {"error": {"message": f"bad request with key {KEY}"}})]) as server:
        ((_, completion),) = list(make(server).complete(reqs(1)))
        hits = server.hits
    assert hits == 1 and completion.text is None and "400" in completion.error
    assert KEY not in completion.error


@pytest.mark.parametrize("code", [401, 403])
def test_auth_failure_names_the_env_var(code):
    with ChatServer(script=lambda body, hit: unauthorized(code)) as server:
        with pytest.raises(TeacherConfigError) as info:
            list(make(server).complete(reqs(3)))
        hits = server.hits
    assert KEY_ENV in str(info.value) and KEY not in str(info.value)
    assert hits <= 3  # no retries


def test_not_found_names_base_url_and_model():
    with ChatServer(script=lambda body, hit: not_found()) as server:
        teacher = make(server, model="no-such-model", concurrency=1)
        with pytest.raises(TeacherConfigError) as info:
            list(teacher.complete(reqs(2)))
        hits = server.hits
        base_url = server.base_url
    assert base_url in str(info.value) and "no-such-model" in str(info.value)
    assert hits == 1


def test_missing_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(TeacherConfigError, match=KEY_ENV):
        OpenAITeacher("m", base_url="https://api.example.com/v1", api_key_env=KEY_ENV)
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(TeacherConfigError, match=KEY_ENV):
        OpenAITeacher("m", base_url="https://api.example.com/v1", api_key_env=KEY_ENV)
    # local servers need no key: no Authorization header is sent
    with ChatServer() as server:
        ((_, completion),) = list(make(server).complete(reqs(1)))
        headers = server.log[0].headers
    assert completion.text is not None and "authorization" not in headers
    for url in ("http://localhost:8000/v1", "http://[::1]:8000/v1", "http://127.0.0.2/v1"):
        OpenAITeacher("m", base_url=url, api_key_env=KEY_ENV)


def test_key_sent_as_bearer_but_never_shown(caplog):
    caplog.set_level(logging.DEBUG)
    with ChatServer(script=[server_error(500)]) as server:
        teacher = make(server)
        list(teacher.complete(reqs(1)))
        headers = server.log[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert teacher.settings() == {"temperature": 0.7, "max_tokens": 512, "seed": 0}
    assert KEY not in repr(teacher) and KEY not in str(teacher) and KEY not in str(teacher.settings())
    assert caplog.records and KEY not in caplog.text  # the retry was logged, without the key


def test_seeds_differ_across_samples_and_are_stable():
    requests = reqs(2, samples=3)
    seeds = []
    for _ in range(2):
        with ChatServer() as server:
            list(make(server, seed=7).complete(requests))
            seeds.append({(b["messages"][-1]["content"], b["seed"]) for b in server.bodies()})
    assert seeds[0] == seeds[1]
    assert len({seed for _, seed in seeds[0]}) == 6
    assert request_seed(7, "q0", 0) != request_seed(7, "q0", 1) != request_seed(8, "q0", 1)
    assert request_seed(7, "q0", 0) == request_seed(7, "q0", 0)
    assert all(0 <= s < 2**31 for _, s in seeds[0])


@pytest.mark.parametrize("concurrency", [1, 4])
def test_budget_stops_before_exceeding(concurrency):
    with ChatServer(script=lambda body, hit: ok(delay=0.02)) as server:
        # ~0.05-ish reserved per request at these prices, ~0.015 actually spent
        teacher = make(server, price_input_per_m=1000.0, price_output_per_m=1000.0, max_tokens=10,
                       budget=0.1, concurrency=concurrency)
        results = list(teacher.complete(reqs(30)))
        hits = server.hits
    usage = teacher.usage
    assert usage.stopped_by_budget
    assert 0 < usage.cost <= 0.1
    assert 0 < hits < 30 and len(results) == hits  # everything sent was finished and yielded
    assert all(c.text for _, c in results)
    # each request's worst case is reserved while it is in flight, so only as many as fit are sent at once
    reserve = teacher._reserve(messages_for(reqs(1)[0]))
    assert server.max_in_flight <= min(concurrency, int(0.1 // reserve))


def test_budget_not_reached():
    with ChatServer() as server:
        teacher = make(server, price_input_per_m=1.0, price_output_per_m=1.0, budget=10.0)
        assert len(list(teacher.complete(reqs(5)))) == 5
    assert not teacher.usage.stopped_by_budget


def test_concurrency_bound():
    with ChatServer(delay=0.1) as server:
        results = list(make(server, concurrency=3).complete(reqs(12)))
        most = server.max_in_flight
    assert len(results) == 12
    assert 2 <= most <= 3


def test_stopping_early_cancels_pending():
    with ChatServer(delay=0.1) as server:
        teacher = make(server, concurrency=2)
        iterator = teacher.complete(reqs(50))
        next(iterator)
        started = time.monotonic()
        iterator.close()
        assert time.monotonic() - started < 1.0
        time.sleep(0.3)
        hits = server.hits
    assert hits <= 4  # the rest were never sent


def test_requests_are_pulled_lazily():
    pulled = []

    def source():
        for request in reqs(10):
            pulled.append(request.question_id)
            yield request

    with ChatServer() as server:
        iterator = make(server, concurrency=2).complete(source())
        next(iterator)
        assert len(pulled) <= 3
        iterator.close()


def test_prompt_version_with_custom_messages():
    with ChatServer() as server:
        teacher = make(server)
        assert teacher.prompt_version("cot") == teacher.prompt_version("eot")
        assert teacher.prompt_version("cot").startswith("custom-")


def test_retry_after_parsing():
    from email.utils import formatdate

    from eotd.teachers.openai_compat import _retry_after

    assert _retry_after("2") == 2.0 and _retry_after(" 0.5 ") == 0.5
    assert _retry_after(None) is None and _retry_after("soon") is None and _retry_after("nan") is None
    assert 8 <= _retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert _retry_after(formatdate(time.time() - 100, usegmt=True)) == 0.0


def test_default_messages_come_from_prompts(monkeypatch):
    """Without messages_for, messages, version and reply parsing come from eotd.prompts (a stand-in here)."""
    import sys
    import types

    import eotd

    class Prompt:
        def __init__(self, thought):
            self.thought, self.version = thought, f"{thought}-v9"

        def messages(self, question):
            return [{"role": "user", "content": f"[{self.thought}] {question}"}]

        def parse(self, text):
            return text.upper()

    fake = types.ModuleType("eotd.prompts")
    fake.load = Prompt
    monkeypatch.setitem(sys.modules, "eotd.prompts", fake)
    monkeypatch.setattr(eotd, "prompts", fake, raising=False)
    with ChatServer(reply=lambda body: "the answer is 4.") as server:
        teacher = make(server, messages_for=None)
        ((_, completion),) = list(teacher.complete(reqs(1, thought="eot")))
        body = server.log[0].body
    assert teacher.prompt_version("eot") == "eot-v9"
    assert body["messages"] == [{"role": "user", "content": "[eot] Question number 0: what is 0 + 0?"}]
    assert completion.text == "THE ANSWER IS 4."


def test_an_oversized_reply_is_refused_and_not_retried():
    from chat_server import Action

    huge = Action(200, (), {"choices": [{"message": {"content": "x" * (3 << 20)}}]})
    with ChatServer(script=[huge]) as server:
        teacher = make(server, max_reply_bytes=1 << 20)
        [(_, completion)] = list(teacher.complete(reqs(1)))
        assert completion.text is None and "larger than" in completion.error
        assert server.hits == 1
        [(_, again)] = list(teacher.complete(reqs(1)))  # the next reply is normal size: accepted
        assert again.text


def test_timeout_comes_from_params():
    from eotd import params
    from eotd.teachers import build

    p = params.validate({"name": "unit", "teacher": "openai", "teacher_model": "m", "teacher_base_url":
                         "http://127.0.0.1:9/v1", "teacher_api_key_env": KEY_ENV, "teacher_timeout": 7.5,
                         "teacher_max_retries": 2}, "test")
    teacher = build(p)
    assert teacher.timeout == 7.5 and teacher.max_retries == 2


# -- hostile endpoints: every reply ends as a Completion, in bounded time ------------------------------------------

HOSTILE = dict(timeout=1.0, max_retries=1, backoff_base=0.01, backoff_cap=0.05)


def client_for(kind: str, server: ChatServer, **kwargs):
    """The teacher, or a served student (POST /completions), against `server`."""
    if kind == "teacher":
        return make(server, **{**HOSTILE, **kwargs})
    return ServedStudent("student", server.base_url, {"cot": 16}, api_key_env=KEY_ENV,
                         **{"concurrency": 4, **HOSTILE, **kwargs})


def timed(client, requests) -> list[tuple[float, Completion]]:
    started = time.monotonic()
    return [(time.monotonic() - started, completion) for _, completion in client.complete(requests)]


def test_request_deadline_formula():
    """(R + 1) * T + R * backoff_cap, as the README states with the default cap of 60 s; a Retry-After longer than
    the cap is waited for the cap only, so even it ends within the deadline."""
    with ChatServer(script=lambda body, hit: rate_limited(retry_after="1e9")) as server:
        assert make(server, timeout=120.0, max_retries=6).request_deadline == 7 * 120.0 + 6 * 0.05
        assert OpenAITeacher("m", base_url=server.base_url, timeout=2.0, max_retries=1).request_deadline == 2 * 2 + 60
        client = make(server, **HOSTILE)
        [(elapsed, completion)] = timed(client, reqs(1))
        hits = server.hits
    assert hits == 2 and completion.error.startswith("HTTP 429") and elapsed <= client.request_deadline + 1.0


@pytest.mark.parametrize("kind", ["teacher", "served"])
@pytest.mark.parametrize("hostile", [trickle_body, trickle_headers, endless_chunks, lambda: slow(20)],
                         ids=["trickled_body", "trickled_headers", "endless_chunked_body", "silent"])
def test_a_trickling_reply_ends_at_the_deadline(kind, hostile):
    """A server sending a byte every 0.2 s (per-read timeout never fires) is cut at `timeout` per attempt, and the
    request ends within request_deadline; two requests on one connection slot, so no attempt escapes its watchdog."""
    with ChatServer(script=lambda body, hit: hostile()) as server:
        client = client_for(kind, server, concurrency=1)
        results = timed(client, reqs(2))
        hits = server.hits
    assert client.request_deadline == 2 * 1.0 + 0.05
    assert len(results) == 2 and hits == 4  # max_retries + 1 attempts each
    for (elapsed, completion), previous in zip(results, [0.0] + [e for e, _ in results]):
        assert completion.text is None and completion.error.startswith("timeout:"), completion.error
        assert "gave up after 2 attempts" in completion.error
        assert 2 * 1.0 <= elapsed - previous <= client.request_deadline + 1.0  # a margin for a loaded machine


@pytest.mark.parametrize("kind", ["teacher", "served"])
def test_deeply_nested_json_is_a_failed_request(kind):
    with ChatServer(script=lambda body, hit: nested_json()) as server:
        client = client_for(kind, server)
        [(_, completion)] = timed(client, reqs(1))
        hits = server.hits
    assert completion.text is None and hits == 2
    assert completion.error.startswith("malformed reply: JSON nested too deeply"), completion.error


@pytest.mark.parametrize("kind", ["teacher", "served"])
def test_a_lone_surrogate_is_refused(kind, tmp_path):
    from eotd.teachers.cache import CompletionCache

    with ChatServer(script=lambda body, hit: lone_surrogate("chat" if kind == "teacher" else "text")) as server:
        client = client_for(kind, server)
        [(_, completion)] = timed(client, reqs(1))
        hits = server.hits
    assert hits == 1  # what the model wrote: not asked again
    assert completion.text is None and completion.error.startswith("invalid text:") and "U+D800" in completion.error
    assert (completion.input_tokens, completion.output_tokens) == (10, 5)  # billed all the same
    json.dumps(completion.error, ensure_ascii=False).encode("utf-8")  # a record can hold the error
    cache = CompletionCache(tmp_path / "c.sqlite")
    cache.put("k", reqs(1)[0], completion)  # nothing stored, nothing raised
    assert len(cache) == 0
    cache.close()


def test_server_chosen_errors_are_valid_text():
    from chat_server import Action

    empty = Action(200, (), {"choices": [{"message": {"content": ""}, "finish_reason": "\ud800\x1b[2J" * 500}],
                             "usage": {"prompt_tokens": float("inf"), "completion_tokens": 10**300}})
    with ChatServer(script=[empty, status(418, b"\x1b[31m\xff\x00 teapot")]) as server:
        results = [c for _, c in timed(make(server, concurrency=1), reqs(2))]
    for completion in results:
        assert completion.text is None and len(completion.error) <= 1000
        completion.error.encode("utf-8")
        assert "\x1b" not in completion.error
    assert results[0].output_tokens == 2**31 - 1 and results[0].input_tokens == 0


def test_a_served_evaluation_fails_in_bounded_time():
    from types import SimpleNamespace

    from eotd import served

    p = SimpleNamespace(student_model="eotd-{method}", student_api_key_env=KEY_ENV, student_concurrency=2,
                        teacher_timeout=1.0, teacher_max_retries=1)
    with ChatServer(script=lambda body, hit: trickle_body()) as server:
        p.student_base_url = server.base_url
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="prompt 0 of ETD failed: timeout"):
            served.generate(p, "ETD", [("2 + 2 =", "cot")], {"cot": 8})
    assert time.monotonic() - started <= 2 * 1.0 + 1.1 + 1.0  # two attempts, one default back-off, a margin


def test_synthesis_against_a_partly_hostile_endpoint(tmp_path, monkeypatch):
    """The run finishes, keeps the good completions in the cache, and reports the failed ones by reason."""
    from chat_server import Action

    from eotd import params, synthesis, verification

    monkeypatch.setenv("EOTD_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EOTD_CACHE_DIR", str(tmp_path / "cache"))
    values = {"name": "hostile", "train_dataset": "gsm_symbolic", "train_questions": 5, "teacher": "openai",
              "teacher_model": "scripted", "teacher_concurrency": 4, "teacher_timeout": 1.0,
              "teacher_max_retries": 1}
    problems = synthesis.training_problems(params.validate({**values, "teacher_base_url": "http://127.0.0.1:9/v1"},
                                                           "test"))
    hostile = {problems[0].question: trickle_body, problems[1].question: nested_json,
               problems[2].question: lone_surrogate}

    def script(body, hit, hostile=hostile):
        question = next(p for p in problems if p.question in last_user(body))
        if question.question in hostile:
            return hostile[question.question]()
        return Action(200, (), {"choices": [{"message": {"role": "assistant", "content": f"ans = {question.answer}"},
                                             "finish_reason": "stop"}], "usage": {"prompt_tokens": 9,
                                                                                  "completion_tokens": 3}})

    with ChatServer(script=script) as server:
        p = params.validate({**values, "teacher_base_url": server.base_url}, "test")
        result = synthesis.run(p, progress=False)  # no SynthesisError: every type has rationales
        first = verification.run(p, progress=False)
        first_hits = server.hits
        hostile.clear()  # the endpoint recovers: only the failed requests are asked again
        synthesis.run(p, progress=False)
        verification.run(p, progress=False)
        second_hits = server.hits - first_hits
    summary = json.loads((tmp_path / "results" / "hostile" / "synthesis_summary.json").read_text())
    for thought in result.summary["types"]:
        mine = [r for r in first.rows if r["thought"] == thought]
        assert len([r for r in first.kept if r["thought"] == thought]) == 2, thought
        assert sorted(r["reason"] for r in mine if r["reason"].startswith("teacher:")) == [
            "teacher:invalid text", "teacher:malformed reply", "teacher:timeout"]
        assert summary["types"][thought]["kept"] == 5
    assert first_hits == 3 * (2 * 2 + 1 + 2) and second_hits == 3 * 3
