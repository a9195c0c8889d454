"""Evaluation throughput of the default student: batched greedy generation vs a naive one-at-a-time generate loop."""
import time

import torch

from eotd import formats, infer, models
from eotd.data import load_gsm_symbolic

N, MAX_NEW, BATCH = 16, 48, 16


def run(label: str, fn) -> None:
    start = time.perf_counter()
    outputs = fn()
    elapsed = time.perf_counter() - start
    tokens = sum(len(tokenizer(o)["input_ids"]) for o in outputs)
    print(f"{label:>28}: {N / elapsed:5.2f} problems/s, {tokens / elapsed:6.1f} generated tokens/s ({elapsed:.1f} s)")
    return elapsed


model, tokenizer = models.load(models.DEFAULT_STUDENT)
torch.set_num_threads(torch.get_num_threads())
prompts = [formats.student_input(p.question, "pot") for p in load_gsm_symbolic(N, seed=1)]
print(f"{models.DEFAULT_STUDENT}: {N} GSM-Symbolic questions, greedy, max_new_tokens={MAX_NEW}, "
      f"{torch.get_num_threads()} threads, bf16 autocast={infer.bf16_supported()}")
naive = run("naive loop (batch 1, fp32)", lambda: [
    tokenizer.decode(model.generate(**tokenizer(p, return_tensors="pt"), do_sample=False, max_new_tokens=MAX_NEW,
                                    pad_token_id=tokenizer.pad_token_id)[0], skip_special_tokens=True)
    for p in prompts])
batched = run(f"eotd.infer (batch {BATCH})", lambda: infer.generate(model, tokenizer, prompts, MAX_NEW, BATCH))
print(f"speed-up: {naive / batched:.1f}x")
