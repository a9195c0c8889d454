"""A local transformers model as the teacher (any causal or seq2seq hub id or folder), sampling in batches."""
from __future__ import annotations

import hashlib
from typing import Iterable, Iterator

import torch

from eotd import models, prompts
from eotd.teachers.base import Completion, Request, Usage


class TransformersTeacher:
    backend = "transformers"
    is_llm = True

    def __init__(self, model: str, temperature: float = 0.7, max_new_tokens: int = 512, batch_size: int = 8,
                 seed: int = 0) -> None:
        self.model = model
        self.temperature, self.max_new_tokens, self.batch_size, self.seed = temperature, max_new_tokens, batch_size, seed
        self.usage = Usage()
        self._loaded = None

    def settings(self) -> dict:
        return {"temperature": self.temperature, "max_new_tokens": self.max_new_tokens, "seed": self.seed}

    def prompt_version(self, thought: str) -> str:
        return prompts.load(thought).version

    def _batch_seed(self, batch: list[Request]) -> int:
        ids = "|".join(f"{r.question_id}/{r.thought}/{r.sample_index}" for r in batch)
        return int(hashlib.sha256(f"{self.seed}:{ids}".encode()).hexdigest()[:8], 16)

    def complete(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Completion]]:
        if self._loaded is None:
            self._loaded = models.load_for_inference(self.model)
        model, tokenizer = self._loaded
        pending = list(requests)
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start:start + self.batch_size]
            inputs = tokenizer([prompts.for_model(tokenizer, r.thought, r.question) for r in batch], return_tensors="pt", padding=True).to(model.device)
            torch.manual_seed(self._batch_seed(batch))
            with torch.inference_mode():
                out = model.generate(**inputs, do_sample=self.temperature > 0, temperature=self.temperature or None,
                                     max_new_tokens=self.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
            new = out if model.config.is_encoder_decoder else out[:, inputs["input_ids"].shape[1]:]
            for request, tokens, mask in zip(batch, new, inputs["attention_mask"]):
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                n_out = int((tokens != tokenizer.pad_token_id).sum())
                completion = Completion(prompts.load(request.thought).parse(text), int(mask.sum()), n_out)
                self.usage.add(completion)
                yield request, completion
