"""Batched greedy generation with the KV cache, outputs returned in the caller's order.

Causal models whose forward takes `logits_to_keep` decode with continuous batching (`greedy_continuous`): a
sequence leaves the batch as soon as it ends and a waiting prompt takes its place, so decoding steps run full
batches. Measured on the 2-core Xeon (bf16), a trained PoTD student on 200 SVAMP and 200 GSM8K test prompts: see
tests/benchmarks/bench_infer.py. Other models (seq2seq) use `model.generate` on length-sorted, left-padded batches
(`generate_static`).
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicLayer

from eotd import console
from eotd.machine import bf16_supported

DECODING = "continuous"  # how generate batches causal models; part of the answer caches' keys


def autocast(model: torch.nn.Module, enabled: bool | None = None):
    """bf16 autocast on the model's device when supported (weights stay fp32), else a no-op."""
    if enabled is None:
        enabled = bf16_supported()
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(model.device.type, dtype=torch.bfloat16)


def stop_ids(model, tokenizer) -> list[int]:
    """The model's own end tokens plus the tokenizer's eos (what fine-tuning appended), so batches end early."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [*ids, tokenizer.eos_token_id] if i is not None})


def batch_plan(lengths: list[int], max_new_tokens: int, batch_tokens: int, max_batch: int) -> list[list[int]]:
    """Indices grouped longest first into batches whose (size x (longest prompt + max_new_tokens)) stays within
    `batch_tokens` and whose size stays within `max_batch`: the KV cache and the matmuls are sized by tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    plan, batch = [], []
    for i in order:
        width = (lengths[batch[0]] if batch else lengths[i]) + max_new_tokens
        if batch and (len(batch) >= max_batch or (len(batch) + 1) * width > batch_tokens):
            plan.append(batch)
            batch = []
        batch.append(i)
    if batch:
        plan.append(batch)
    return plan


class _GrowingLayer(DynamicLayer):
    """A KV-cache layer whose keys and values are views into a buffer with room to grow, so a decoding step writes
    one column in place; transformers' DynamicLayer concatenates, copying the whole cache every step (a third of a
    decoding step of 192 rows on the 2-core Xeon)."""
    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int):
        super().__init__()
        self.device, self.is_initialized = keys.device, True
        self.set(keys, values, room)

    def set(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        width = keys.shape[-2]
        self._keys = keys.new_empty(*keys.shape[:-2], width + room, keys.shape[-1])
        self._values = values.new_empty(*values.shape[:-2], width + room, values.shape[-1])
        self._keys[..., :width, :], self._values[..., :width, :] = keys, values
        self.keys, self.values = self._keys[..., :width, :], self._values[..., :width, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        width, new = self.keys.shape[-2], key_states.shape[-2]
        if width + new > self._keys.shape[-2]:
            self.set(self.keys, self.values, room=max(64, width))
        self._keys[..., width:width + new, :], self._values[..., width:width + new, :] = key_states, value_states
        self.keys, self.values = self._keys[..., :width + new, :], self._values[..., :width + new, :]
        return self.keys, self.values


@dataclass
class _Rows:
    """The running batch of continuous batching: per row its prompt's index, the token to feed next and its
    position, how many tokens it generated and whether it still runs (an ended row stays until the batch is
    compacted); the attention mask and KV cache are left-padded, every row ending at the last column."""
    index: torch.Tensor
    token: torch.Tensor
    position: torch.Tensor  # [rows, 1]
    count: torch.Tensor
    alive: torch.Tensor
    mask: torch.Tensor  # [rows, width]
    cache: object  # a transformers DynamicCache whose layers are _GrowingLayers

    def keep(self, rows: torch.Tensor, room: int) -> "_Rows":
        """These rows only; columns no row attends to any more leave the cache."""
        mask = self.mask[rows]
        first = int(mask.any(0).long().argmax())
        for layer in self.cache.layers:
            layer.set(layer.keys[rows, :, first:], layer.values[rows, :, first:], room)
        return _Rows(self.index[rows], self.token[rows], self.position[rows], self.count[rows], self.alive[rows],
                     mask[:, first:], self.cache)

    def join(self, other: "_Rows", room: int) -> "_Rows":
        """Both batches in one, the narrower left-padded to the wider."""
        width = max(self.mask.shape[1], other.mask.shape[1])

        def pad(t: torch.Tensor, dim: int) -> torch.Tensor:
            return torch.nn.functional.pad(t, [0, 0] * (-dim - 1) + [width - t.shape[dim], 0])

        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.set(torch.cat([pad(mine.keys, -2), pad(theirs.keys, -2)]),
                     torch.cat([pad(mine.values, -2), pad(theirs.values, -2)]), room)
        fields = ("index", "token", "position", "count", "alive")
        return _Rows(*(torch.cat([getattr(self, f), getattr(other, f)]) for f in fields),
                     torch.cat([pad(self.mask, -1), pad(other.mask, -1)]), self.cache)


def _cache_arg(model) -> str:
    """The name under which the model's forward takes the KV cache."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _forward_argmax(model, cache_arg: str, ids: torch.Tensor, mask: torch.Tensor, position: torch.Tensor,
                    cache) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True, logits_to_keep=1,
                   **{cache_arg: cache}).logits[:, -1]
    # in fp32: the same index (bf16 converts exactly; ties go to the first index either way), and torch's CPU argmax
    # over bf16 is slower than the conversion plus an fp32 argmax (bench_infer.py --argmax prints both)
    return logits.float().argmax(-1)


def _prefill(model, cache_arg: str, prompts: list[list[int]], index: list[int], pad_id: int, room: int) -> _Rows:
    """Left-padded prompts through the model in one batch: their first new tokens and their cache."""
    from transformers import DynamicCache

    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=model.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=model.device)
    cache = DynamicCache(config=model.config)
    token = _forward_argmax(model, cache_arg, ids, mask, (mask.cumsum(-1) - 1).clamp(min=0), cache)
    cache.layers = [_GrowingLayer(layer.keys, layer.values, room) for layer in cache.layers]
    return _Rows(torch.tensor(index, device=model.device), token, mask.sum(-1, keepdim=True),
                 torch.ones(len(prompts), dtype=torch.long, device=model.device),
                 torch.ones(len(prompts), dtype=torch.bool, device=model.device), mask, cache)


def _joining(waiting: list[int], prompts: list[list[int]], live: _Rows | None, max_rows: int, batch_tokens: int,
             max_new_tokens: int) -> list[int]:
    """The waiting prompts (longest first) that join the running rows now: as many as the places and the token
    budget allow, at least one when nothing runs."""
    running = 0 if live is None else len(live.index)
    width = 0 if live is None else live.mask.shape[1]
    joining: list[int] = []
    while waiting and running + len(joining) < max_rows:
        wider = max(width, len(prompts[waiting[0]]))
        if (running or joining) and (running + len(joining) + 1) * (wider + max_new_tokens) > batch_tokens:
            break
        joining.append(waiting.pop(0))
        width = wider
    return joining


def _record(rows: _Rows, out: list[list[int]], stop: torch.Tensor, max_new_tokens: int) -> int:
    """Append each running row's new token to its output; rows that end stop running. Returns how many ended."""
    ended = rows.alive & torch.isin(rows.token, stop)
    for row, token in zip(rows.index[rows.alive & ~ended].tolist(), rows.token[rows.alive & ~ended].tolist()):
        out[row].append(token)
    done = rows.alive & (ended | (rows.count >= max_new_tokens))
    rows.alive &= ~done
    return int(done.sum())


def greedy_continuous(model, prompts: list[list[int]], max_new_tokens: int, stop: list[int], pad_id: int,
                      max_rows: int, batch_tokens: int, finished=None) -> list[list[int]]:
    """Greedy new token ids per prompt (stop token excluded) with continuous batching.

    Waiting prompts, longest first, take the places of rows that ended: prefilled together, then joined to the
    running batch. A decoding step costs nearly as much for a few rows as for many (SmolLM2-135M in bf16 on the
    2-core Xeon: 44 ms for 8 rows, 103 ms for 96, 174 ms for 192), so batches that stay full are what make it fast;
    a batch that only shrinks decodes its few long answers nearly alone. Ended rows stay in the batch until a
    quarter of its places are free (compacting copies the cache). The batch holds at most `max_rows` rows and
    `batch_tokens` cache positions (rows x (width + max_new_tokens)). `finished(n)` is called as n rows end.
    """
    out: list[list[int]] = [[] for _ in prompts]
    waiting = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    stop_ids = torch.tensor(stop, device=model.device)
    quarter = max(1, max_rows // 4)
    cache_arg = _cache_arg(model)
    live: _Rows | None = None
    while waiting or (live is not None and bool(live.alive.any())):
        if live is not None:  # one decoding step
            live.mask = torch.cat([live.mask, live.mask.new_ones(len(live.index), 1)], dim=1)
            live.token = _forward_argmax(model, cache_arg, live.token[:, None], live.mask, live.position, live.cache)
            live.position, live.count = live.position + 1, live.count + 1
            ended = _record(live, out, stop_ids, max_new_tokens)
            if ended and finished is not None:
                finished(ended)
        running = 0 if live is None else int(live.alive.sum())
        if running and (len(live.index) - running < quarter or (waiting and max_rows - running < quarter)):
            continue
        live = live.keep(live.alive.nonzero().squeeze(-1), max_new_tokens) if running else None
        joining = _joining(waiting, prompts, live, max_rows, batch_tokens, max_new_tokens)
        if joining:
            new = _prefill(model, cache_arg, [prompts[i] for i in joining], joining, pad_id, max_new_tokens)
            ended = _record(new, out, stop_ids, max_new_tokens)
            if ended and finished is not None:
                finished(ended)
            live = new if live is None else live.join(new, max_new_tokens)
    return out


def _compacts(model) -> bool:
    return not model.config.is_encoder_decoder and "logits_to_keep" in inspect.signature(model.forward).parameters


def generate_static(model, tokenizer, prompts: list[str], max_new_tokens: int = 256, batch_size: int = 16,
                    bf16: bool | None = None, batch_tokens: int | None = None, finished=None) -> list[str]:
    """Greedy continuations (decoded, stripped) by transformers' `model.generate` on batch_plan's length-sorted,
    left-padded batches, each running until its last sequence ends; `finished(n)` is called as a batch of n ends."""
    stop = stop_ids(model, tokenizer)
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=True)["input_ids"]]
    outputs: list[str | None] = [None] * len(prompts)
    seq2seq = model.config.is_encoder_decoder
    for chunk in batch_plan(lengths, max_new_tokens, batch_tokens or 10 ** 12, batch_size):
        inputs = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode(), autocast(model, bf16):
            out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=stop)
        new = out if seq2seq else out[:, inputs["input_ids"].shape[1]:]
        for i, text in zip(chunk, tokenizer.batch_decode(new, skip_special_tokens=True)):
            outputs[i] = text.strip()
        if finished is not None:
            finished(len(chunk))
    return outputs


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 256, batch_size: int = 16,
             bf16: bool | None = None, progress: bool = False, desc: str = "generate",
             batch_tokens: int | None = None) -> list[str]:
    """Greedy continuations of `prompts` (decoded, special tokens skipped), in input order.

    Batches hold `batch_size` prompts, or with `batch_tokens` as many as fit that budget (up to batch_size); a
    batch stops as soon as every sequence has produced its end token. Causal models with `logits_to_keep` decode
    with `greedy_continuous`, others with `generate_static`.
    """
    if not prompts:
        return []
    bar = console.bar(total=len(prompts), desc=desc, disable=not progress)
    if _compacts(model):
        stop = stop_ids(model, tokenizer)
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
        with torch.inference_mode(), autocast(model, bf16):
            new = greedy_continuous(model, ids, max_new_tokens, stop, pad_id, batch_size, batch_tokens or 10 ** 12,
                                    finished=bar.update)
        outputs = [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]
    else:
        outputs = generate_static(model, tokenizer, prompts, max_new_tokens, batch_size, bf16, batch_tokens,
                                  finished=bar.update)
    bar.close()
    return outputs
