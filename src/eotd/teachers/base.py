"""What every teacher backend shares: a request for one rationale, the completion it gets, and usage accounting."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol


@dataclass(frozen=True)
class Request:
    """One rationale to write: a question in one thought type, sample number `sample_index`."""

    question_id: str
    question: str
    thought: str  # "cot" | "pot" | "eot"
    sample_index: int = 0
    gold_solution: str | None = None  # the dataset's worked solution (what the annotation teacher converts)


@dataclass(frozen=True)
class Completion:
    text: str | None  # None when the teacher produced nothing usable; `error` says why
    input_tokens: int = 0
    output_tokens: int = 0
    error: str = ""


@dataclass
class Usage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    stopped_by_budget: bool = False

    def add(self, completion: Completion, price_in: float = 0.0, price_out: float = 0.0) -> None:
        """Count one completion; prices are per 1M input / output tokens."""
        self.requests += 1
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.cost += (completion.input_tokens * price_in + completion.output_tokens * price_out) / 1e6


class Teacher(Protocol):
    backend: str  # "openai" | "transformers" | "annotation"
    model: str
    is_llm: bool  # False for the annotation teacher: its rationales are derived from gold solutions
    usage: Usage

    def settings(self) -> dict:
        """Sampling settings that change what is generated (they go into every cache key)."""

    def prompt_version(self, thought: str) -> str:
        """A short hash of what the teacher is told for `thought` (its prompt file or rewrite rules); in every cache
        key and record."""

    def complete(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Completion]]:
        """Yield each request with its completion as soon as it is done (any order)."""
