"""Students served by an engine: evaluation sends the student's prompts to an OpenAI-compatible *completions*
endpoint (`vllm serve <final folder>`, llama.cpp's server, TGI) instead of generating in-process, as lm-eval's
`local-completions` does. Greedy (temperature 0), the same prompts and token budgets as `eotd.infer`, and the teacher
client's concurrency, retries, deadline (teacher_timeout per attempt, OpenAITeacher.request_deadline per request) and
error handling: a reply the client cannot use fails that prompt in bounded time, never hangs the evaluation.
"""
from __future__ import annotations

from eotd.protocol import split_label
from eotd.teachers.base import Completion, Request
from eotd.teachers.openai_compat import MalformedReply, OpenAITeacher, first_choice


class ServedStudent(OpenAITeacher):
    """POST {base_url}/completions with the raw prompt; max_tokens per thought type."""

    def __init__(self, model: str, base_url: str, max_tokens: dict[str, int], **options) -> None:
        super().__init__(model, base_url=base_url, temperature=0.0, max_tokens=max(max_tokens.values()),
                         messages_for=lambda request: [{"role": "user", "content": request.question}], **options)
        self.max_tokens_for = dict(max_tokens)
        self._url = f"{self.base_url}/completions"

    def _body(self, request: Request, messages: list[dict]) -> dict:
        return {"model": self.model, "prompt": request.question, "temperature": 0.0, "n": 1,
                "max_tokens": self.max_tokens_for.get(request.thought, self.max_tokens)}

    @staticmethod
    def _read(content: bytes) -> Completion:
        """The text of choices[0]; an empty text is a real answer (the student ended at once)."""
        choice, tokens_in, tokens_out = first_choice(content)
        if not isinstance(choice.get("text"), str):
            raise MalformedReply("choices[0].text is not a string")
        return Completion(choice["text"], tokens_in, tokens_out)


def model_name(p, label: str) -> str:
    """The served model of a student label: p.student_model with {method}, {seed} and {label} filled in
    ("eotd-{method}" -> "eotd-PoTD" for PoTD@1)."""
    method, seed = split_label(label)
    return p.student_model.format(method=method, seed=seed, label=label)


def generate(p, label: str, prompts: list[tuple[str, str]], budget: dict[str, int]) -> list[str]:
    """Texts for (prompt, thought) pairs, in order, from the endpoint p.student_base_url serving the label's
    model_name. A request that fails for good raises."""
    client = ServedStudent(model_name(p, label), p.student_base_url, budget,
                           api_key_env=p.student_api_key_env, concurrency=p.student_concurrency,
                           timeout=p.teacher_timeout, max_retries=p.teacher_max_retries)
    requests = [Request(str(i), prompt, thought, 0) for i, (prompt, thought) in enumerate(prompts)]
    out: list[str | None] = [None] * len(requests)
    for request, completion in client.complete(requests):
        if completion.text is None:
            raise RuntimeError(f"{client.base_url} ({client.model}): prompt {request.question_id} of {label} failed: "
                               f"{completion.error}")
        out[int(request.question_id)] = completion.text.strip()
    return out
