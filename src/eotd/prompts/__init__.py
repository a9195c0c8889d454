"""Few-shot teacher prompts for CoT, PoT and EoT rationales, kept as versioned YAML data files in this package.

Each ``<thought>.yaml`` holds ``thought``, ``system`` (the instruction), ``header`` (the line the rationale is
written under, the same trigger the student sees) and ``exemplars`` (a list of ``{question, answer, rationale}``).
``Prompt.version`` is the first 12 hex chars of the sha256 of the file's bytes; every record a prompt produces
carries it, so editing an exemplar is visible in the data.
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from eotd.protocol import THOUGHTS

_FENCE = re.compile(r"^[ \t]*```[\w+-]*[ \t]*$", re.MULTILINE)
_NEXT_QUESTION = re.compile(r"\n[ \t]*Question:")


@dataclass(frozen=True)
class Exemplar:
    """One worked few-shot example; ``answer`` is the gold answer as text (checked by the tests with eotd.verify)."""
    question: str
    answer: str
    rationale: str


@dataclass(frozen=True)
class Prompt:
    """A few-shot prompt for one thought type, rendered as chat messages or as plain completion text."""
    thought: str
    system: str
    header: str
    exemplars: tuple[Exemplar, ...]
    version: str  # sha256 of the yaml file's bytes, first 12 hex chars

    def _turn(self, question: str) -> str:
        return f"Question: {question.strip()}\n{self.header}"

    def messages(self, question: str, shots: int | None = None) -> list[dict]:
        """Chat format: system, a user/assistant pair per exemplar (the first `shots`), then the user turn."""
        out = [{"role": "system", "content": self.system}]
        for ex in self.exemplars[:shots]:
            out.append({"role": "user", "content": self._turn(ex.question)})
            out.append({"role": "assistant", "content": ex.rationale})
        out.append({"role": "user", "content": self._turn(question)})
        return out

    def text(self, question: str, shots: int | None = None) -> str:
        """Plain few-shot completion prompt for base models; ends with the header line of `question`."""
        examples = "".join(f"{self._turn(ex.question)}\n{ex.rationale}\n\n" for ex in self.exemplars[:shots])
        return f"{examples}{self._turn(question)}\n"

    def parse(self, reply: str) -> str:
        """A model reply as a bare rationale: no surrounding blanks, repeated header, code fences or next "Question:"."""
        text = reply.strip()
        cut = _NEXT_QUESTION.search(text)  # the model went on to invent the next few-shot example
        if cut:
            text = text[:cut.start()]
        lines = text.strip().splitlines()
        while lines and (not lines[0].strip() or _same_header(lines[0], self.header)):
            lines.pop(0)
        text = "\n".join(lines)
        fences = list(_FENCE.finditer(text))
        # PoT: keep the first fenced block wherever it is; CoT and EoT: only unwrap a reply that is one fenced block.
        if fences and (self.thought == "pot" or fences[0].start() == 0):
            end = fences[1].start() if len(fences) > 1 else len(text)
            text = text[fences[0].end():end]
        return text.strip()


def _same_header(line: str, header: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(s.replace("’", "'").split()).rstrip(".:").lower()
    return norm(line) == norm(header)


def _str(value, where: str, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and field.endswith(".answer"):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {field!r} must be a non-empty string, got {value!r}")
    return value.strip()


def load_file(path) -> Prompt:
    """Read a prompt yaml from a path (or importlib Traversable); a malformed file raises ValueError naming it and the field."""
    path = Path(path) if isinstance(path, str) else path
    raw = path.read_bytes()
    where = str(path)
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{where}: not valid UTF-8 YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{where}: top level must be a mapping with thought, system, header, exemplars")
    thought = _str(data.get("thought"), where, "thought")
    if thought not in THOUGHTS:
        raise ValueError(f"{where}: field 'thought' must be one of {THOUGHTS}, got {thought!r}")
    system = _str(data.get("system"), where, "system")
    header = _str(data.get("header"), where, "header")
    items = data.get("exemplars")
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where}: field 'exemplars' must be a non-empty list")
    exemplars = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{where}: field 'exemplars[{i}]' must be a mapping with question, answer, rationale")
        exemplars.append(Exemplar(*(_str(item.get(k), where, f"exemplars[{i}].{k}")
                                    for k in ("question", "answer", "rationale"))))
    version = hashlib.sha256(raw).hexdigest()[:12]
    return Prompt(thought, system, header, tuple(exemplars), version)


@functools.cache
def load(thought: str) -> Prompt:
    """The packaged prompt for `thought` ("cot", "pot" or "eot"), read once with importlib.resources."""
    if thought not in THOUGHTS:
        raise ValueError(f"unknown thought {thought!r}; valid thoughts: {', '.join(THOUGHTS)}")
    prompt = load_file(resources.files(__name__).joinpath(f"{thought}.yaml"))
    if prompt.thought != thought:
        raise ValueError(f"{thought}.yaml: field 'thought' is {prompt.thought!r}, expected {thought!r}")
    return prompt


def for_model(tokenizer, thought: str, question: str, shots: int | None = None) -> str:
    """The few-shot prompt as a local model should see it: its chat template when it has one, else plain text."""
    prompt = load(thought)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt.messages(question, shots), tokenize=False,
                                             add_generation_prompt=True)
    return prompt.text(question, shots)
