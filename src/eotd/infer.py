"""Batched greedy generation with the KV cache: prompts sorted by length so batches pad little, left padding for
causal models (their continuations then line up), outputs returned in the caller's order."""
from __future__ import annotations

import contextlib

import torch
from tqdm.auto import tqdm


def bf16_supported() -> bool:
    """bf16 autocast pays off on CUDA and on CPUs with native bf16 (avx512_bf16 / AMX); elsewhere it is emulated."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(model: torch.nn.Module, enabled: bool | None = None):
    """bf16 autocast on the model's device when supported (weights stay fp32), else a no-op."""
    if enabled is None:
        enabled = bf16_supported()
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(model.device.type, dtype=torch.bfloat16)


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 256, batch_size: int = 16,
             bf16: bool | None = None, progress: bool = False, desc: str = "generate") -> list[str]:
    """Greedy continuations of `prompts` (decoded, special tokens skipped), in input order."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    outputs: list[str | None] = [None] * len(prompts)
    seq2seq = model.config.is_encoder_decoder
    bar = tqdm(total=len(prompts), desc=desc, disable=not progress)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        inputs = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode(), autocast(model, bf16):
            out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out if seq2seq else out[:, inputs["input_ids"].shape[1]:]
        for i, text in zip(chunk, tokenizer.batch_decode(new, skip_special_tokens=True)):
            outputs[i] = text.strip()
        bar.update(len(chunk))
    bar.close()
    return outputs
