"""Evaluation throughput of the default student: the token-budget batches of eotd.infer vs the fixed batch of 16 the
evaluation used before, vs a naive one-at-a-time generate loop; and whether the batched outputs equal the naive ones.

Run: .venv/bin/python tests/benchmarks/bench_infer.py [--student NAME_OR_FOLDER]   (about 4 minutes on 2 cores)
A trained student (its final/ folder) shows the effect of stopping at the end token; the untrained default student
rarely stops, so every prompt there runs to max_new_tokens.
"""
import argparse
import time

import torch

from eotd import infer, models, protocol
from eotd.data import load_gsm_symbolic

N, NAIVE_N, MAX_NEW = 96, 16, 64


def timed(label: str, tokenizer, fn, n: int) -> tuple[list[str], float]:
    start = time.perf_counter()
    outputs = fn()
    elapsed = time.perf_counter() - start
    tokens = sum(len(tokenizer(o)["input_ids"]) for o in outputs)
    print(f"{label:>44}: {n / elapsed:5.2f} problems/s, {tokens / elapsed:6.1f} generated tokens/s ({elapsed:.1f} s)",
          flush=True)
    return outputs, tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", default=models.DEFAULT_STUDENT)
    student = parser.parse_args().student
    model, tokenizer = models.load_for_inference(student)
    prompts = [protocol.student_input(p.question, "pot") for p in load_gsm_symbolic(N, seed=1)]
    print(f"{student}: {N} GSM-Symbolic PoT prompts, greedy, max_new_tokens={MAX_NEW}, {torch.get_num_threads()} "
          f"threads, weights {model.dtype} on {model.device} (bf16 hardware: {infer.bf16_supported()})")
    naive, naive_rate = timed(f"naive loop (batch 1, first {NAIVE_N})", tokenizer, lambda: [
        tokenizer.decode(model.generate(**tokenizer(p, return_tensors="pt").to(model.device), do_sample=False,
                                        max_new_tokens=MAX_NEW, pad_token_id=tokenizer.pad_token_id)[0][
            len(tokenizer(p)["input_ids"]):], skip_special_tokens=True).strip()
        for p in prompts[:NAIVE_N]], NAIVE_N)
    _, before = timed("before: fixed batches of 16", tokenizer,
                      lambda: infer.generate(model, tokenizer, prompts, MAX_NEW, batch_size=16), N)
    batched, after = timed("now: token budget 16384, up to 96 prompts", tokenizer,
                           lambda: infer.generate(model, tokenizer, prompts, MAX_NEW, batch_size=96,
                                                  batch_tokens=16384), N)
    same = sum(a == b for a, b in zip(naive, batched[:NAIVE_N]))
    print(f"speed-up over the fixed batch of 16: {after / before:.2f}x; over the naive loop: {after / naive_rate:.1f}x")
    print(f"batched outputs equal to the one-at-a-time loop: {same}/{NAIVE_N}")


if __name__ == "__main__":
    main()
