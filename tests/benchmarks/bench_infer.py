"""Evaluation throughput of the default student: the token-budget batches of eotd.infer vs the fixed batch of 16 the
evaluation would use, vs a naive one-at-a-time generate loop; and whether the batched outputs equal the naive ones.
Each rate also as achieved GFLOP/s (2 x the non-embedding params per prompt token, plus the output layer per generated
token; attention and padding left out) and as a share of the matmul peak of the inference dtype, measured in the same
run.

Run: .venv/bin/python tests/benchmarks/bench_infer.py [--student NAME_OR_FOLDER]   (about 4 minutes on 2 cores)
A trained student (its final/ folder) shows the effect of stopping at the end token; the untrained default student
rarely stops, so every prompt there runs to max_new_tokens.

`--engines` (after `pip install -e '.[engines]'`, on a trained student's folder) instead compares, in one run,
transformers' `generate` (the reference), eotd.infer's continuous batching and CTranslate2 (fp32 and int8; its CPU build
has no bf16) on the first 200 problems of each of the four benchmarks with the PoT trigger, greedy, up to 96 new
tokens: problems/s, how many outputs equal the reference's, and how many programs return the gold answer
(EOTD_DATA_DIR names the benchmark folder). About 6 minutes on 2 cores.

`--split STUDENT` (a trained student's final/ folder, or `base` for the untrained default student as 04 prompts it)
runs 04's generation for one thought on the first `--per-set` problems of each benchmark with the default tier's
settings and budget, and says where the time goes: prefill forwards, decoding steps, and the cache's compaction
(rows that ended dropped, new rows joined). Needs the default's verification cache (EOTD_CACHE_DIR) for the budget.

`--argmax` times a decoding step's greedy pick over the vocabulary (96 rows of bf16 logits): argmax in bf16 vs the
conversion to fp32 plus an fp32 argmax (what eotd.infer does), and checks the two pick the same tokens.
"""
import argparse
import time

import torch
from bench_train import matmul_peak

from eotd import infer, machine, models, protocol
from eotd.data import load, load_gsm_symbolic

N, NAIVE_N, MAX_NEW = 96, 16, 64
ENGINE_SETS, ENGINE_NEW = ("svamp", "gsm8k_test", "asdiv", "multiarith"), 96


def timed(label: str, tokenizer, fn, prompts: list[str], flops: tuple[int, int],
          peak: float) -> tuple[list[str], float]:
    """Run fn, print its rates; flops = (per prompt token, per generated token)."""
    start = time.perf_counter()
    outputs = fn()
    elapsed = time.perf_counter() - start
    tokens = sum(len(tokenizer(o)["input_ids"]) for o in outputs)
    prompt_tokens = sum(len(ids) for ids in tokenizer(prompts)["input_ids"])
    gflops = (flops[0] * prompt_tokens + flops[1] * tokens) / elapsed / 1e9
    print(f"{label:>44}: {len(prompts) / elapsed:5.2f} problems/s, {tokens / elapsed:6.1f} generated tokens/s, "
          f"{gflops:4.0f} GFLOP/s = {gflops / peak:4.0%} of the matmul peak ({elapsed:.1f} s)", flush=True)
    return outputs, tokens / elapsed


def engines(student: str) -> None:
    """transformers' generate, eotd.infer and CTranslate2 (fp32, int8) on the same prompts, in one run: problems/s,
    outputs equal to transformers' and PoT accuracy (each program run in the sandbox)."""
    import tempfile

    import ctranslate2

    from eotd import prompts as thought_prompts
    from eotd.evaluate import score

    problems = [(name, p) for name in ENGINE_SETS for p in list(load(name))[:200]]
    prompts = [protocol.student_input(p.question, "pot") for _, p in problems]
    model, tokenizer = models.load_for_inference(student)
    print(f"{student}: the first 200 problems of {', '.join(ENGINE_SETS)} with the PoT trigger ({len(prompts)} "
          f"prompts), greedy, up to {ENGINE_NEW} new tokens; {machine.describe()}")

    def report(label: str, outputs: list[str], elapsed: float, reference: list[str] | None, note: str = "") -> None:
        rows = [{"dataset": name, "question_id": p.id, "thought": "pot", "gold": str(p.answer),
                 "output": thought_prompts.load("pot").parse(text), "raw_output": text}
                for (name, p), text in zip(problems, outputs)]
        correct = sum(r["correct"] for r in score(rows))
        same = "" if reference is None else f", {sum(a == b for a, b in zip(reference, outputs))}/{len(prompts)} " \
                                            "outputs equal to transformers'"
        print(f"{label:>36}: {len(prompts) / elapsed:5.2f} problems/s, {correct}/{len(prompts)} correct{same}{note}",
              flush=True)

    start = time.perf_counter()
    # the reference: transformers' own model.generate, without autocast, on eotd.infer's length-sorted batches
    reference = infer.generate_static(model, tokenizer, prompts, ENGINE_NEW, batch_size=96, bf16=False,
                                      batch_tokens=24576)
    report(f"transformers generate ({str(model.dtype).removeprefix('torch.')})", reference,
           time.perf_counter() - start, None)
    start = time.perf_counter()
    ours = infer.generate(model, tokenizer, prompts, ENGINE_NEW, batch_size=96, batch_tokens=24576)
    report(f"eotd.infer, continuous ({str(model.dtype).removeprefix('torch.')})", ours, time.perf_counter() - start,
           reference)
    stops = [tokenizer.convert_ids_to_tokens(i) for i in infer.stop_ids(model, tokenizer)]
    del model
    tokens = [tokenizer.convert_ids_to_tokens(tokenizer(p)["input_ids"]) for p in prompts]
    for compute_type in ("float32", "int8"):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            ctranslate2.converters.TransformersConverter(student).convert(folder, quantization=compute_type, force=True)
            converted = time.perf_counter() - start
            generator = ctranslate2.Generator(folder, device="cpu", compute_type=compute_type,
                                              intra_threads=torch.get_num_threads())
            start = time.perf_counter()
            results = generator.generate_batch(tokens, max_length=ENGINE_NEW, sampling_topk=1,
                                               include_prompt_in_result=False, end_token=stops, max_batch_size=64)
            elapsed = time.perf_counter() - start
        outputs = [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in results]
        report(f"CTranslate2 {compute_type}", outputs, elapsed, reference, f" (conversion {converted:.0f} s)")


class Split:
    """Seconds spent in prefill forwards, decoding steps and cache compaction (keep/join) inside the block."""

    def __init__(self):
        self.seconds = {"prefill": 0.0, "decode": 0.0, "compaction": 0.0}
        self.prefills = self.prefill_tokens = self.steps = self.rows = 0

    def __enter__(self):
        self._saved = infer._forward_argmax, infer._Rows.keep, infer._Rows.join
        forward = self._saved[0]

        def timed_forward(model, cache_arg, ids, mask, position, cache):
            start = time.perf_counter()
            out = forward(model, cache_arg, ids, mask, position, cache)
            decoding = ids.shape[1] == 1
            self.seconds["decode" if decoding else "prefill"] += time.perf_counter() - start
            if decoding:
                self.steps, self.rows = self.steps + 1, self.rows + ids.shape[0]
            else:
                self.prefills, self.prefill_tokens = self.prefills + 1, self.prefill_tokens + ids.numel()
            return out

        def timed(fn):
            def wrapped(*args, **kwargs):
                start = time.perf_counter()
                out = fn(*args, **kwargs)
                self.seconds["compaction"] += time.perf_counter() - start
                return out
            return wrapped

        infer._forward_argmax, infer._Rows.keep, infer._Rows.join = timed_forward, timed(self._saved[1]), \
            timed(self._saved[2])
        return self

    def __exit__(self, *exc):
        infer._forward_argmax, infer._Rows.keep, infer._Rows.join = self._saved


def split(student: str, thought: str, per_set: int) -> None:
    """04's generation of one model and thought with the default tier's settings: where the time goes."""
    from eotd import generation, verification
    from eotd.params import load as load_params

    p = load_params("params/default.yaml")
    base = student == "base"
    model, tokenizer = models.load_for_inference(models.DEFAULT_STUDENT if base else student)
    problems = [pr for name in ENGINE_SETS for pr in list(load(name))[:per_set]]
    prompts = [generation._prompt(tokenizer, pr, thought, p.base_shots if base else None) for pr in problems]
    cap = p.max_new_tokens if base else generation.token_budget(p, verification.load_train_splits(p))[thought]
    with Split() as parts:
        start = time.perf_counter()
        outputs = infer.generate(model, tokenizer, prompts, cap, batch_size=p.eval_batch_size,
                                 batch_tokens=p.eval_batch_tokens)
        elapsed = time.perf_counter() - start
    new = [len(ids) for ids in tokenizer(outputs, add_special_tokens=False)["input_ids"]]
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    shares = ", ".join(f"{k} {v:.1f} s ({v / elapsed:.0%})" for k, v in parts.seconds.items())
    print(f"{student}, {thought}: {len(prompts)} prompts (mean {sum(lengths) / len(lengths):.0f} tokens), up to {cap} "
          f"new tokens (median {sorted(new)[len(new) // 2]}, {sum(n >= cap for n in new)} at the cap); "
          f"{len(prompts) / elapsed:.2f} problems/s in {elapsed:.1f} s: {shares}; {parts.prefills} prefills of "
          f"{parts.prefill_tokens} tokens with padding, {parts.steps} decoding steps of "
          f"{parts.rows / max(1, parts.steps):.0f} rows; {machine.describe()}", flush=True)


def argmax_cost(rows: int = 96, vocab: int = 49152, repeats: int = 200) -> None:
    """bf16 argmax vs fp32 conversion + argmax on random bf16 logits, and whether they agree (ties included)."""
    torch.manual_seed(0)
    logits = torch.randn(rows, vocab).mul(8).to(torch.bfloat16)  # bf16 rounding makes ties between top logits common
    picks = {}
    for label, fn in (("bf16 argmax", lambda: logits.argmax(-1)), ("fp32 conversion + argmax",
                                                                   lambda: logits.float().argmax(-1))):
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            picks[label] = fn()
        print(f"{label:>26}: {(time.perf_counter() - start) / repeats * 1e3:.2f} ms per step ({rows} rows of {vocab})")
    same = int((picks["bf16 argmax"] == picks["fp32 conversion + argmax"]).sum())
    print(f"same token picked: {same}/{rows}; {machine.describe()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", default=models.DEFAULT_STUDENT)
    parser.add_argument("--engines", action="store_true", help="compare with CTranslate2 (needs .[engines])")
    parser.add_argument("--argmax", action="store_true", help="time the greedy pick in bf16 vs fp32")
    parser.add_argument("--split", metavar="STUDENT", help="where 04's generation time goes, for a trained student's "
                        "folder or base")
    parser.add_argument("--thought", default="pot", help="with --split: the thought type to prompt")
    parser.add_argument("--per-set", type=int, default=50, help="with --split: problems per benchmark")
    args = parser.parse_args()
    if args.split:
        return split(args.split, args.thought, args.per_set)
    if args.argmax:
        return argmax_cost()
    if args.engines:
        return engines(args.student)
    student = args.student
    model, tokenizer = models.load_for_inference(student)
    prompts = [protocol.student_input(p.question, "pot") for p in load_gsm_symbolic(N, seed=1)]
    embedding = model.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - embedding
    flops = (2 * body, 2 * (body + embedding))  # the output layer (tied to the embedding) runs on generated tokens
    peak = matmul_peak(torch.bfloat16 if machine.bf16_supported() else torch.float32)
    print(f"{student}: {N} GSM-Symbolic PoT prompts, greedy, max_new_tokens={MAX_NEW}, {torch.get_num_threads()} "
          f"threads, weights {model.dtype} on {model.device} (bf16 hardware: {machine.bf16_supported()}); matmul "
          f"2048x2048 peak of the precision generation uses: {peak:.0f} GFLOP/s")
    naive, naive_rate = timed(f"naive loop (batch 1, first {NAIVE_N})", tokenizer, lambda: [
        tokenizer.decode(model.generate(**tokenizer(p, return_tensors="pt").to(model.device), do_sample=False,
                                        max_new_tokens=MAX_NEW, pad_token_id=tokenizer.pad_token_id)[0][
            len(tokenizer(p)["input_ids"]):], skip_special_tokens=True).strip()
        for p in prompts[:NAIVE_N]], prompts[:NAIVE_N], flops, peak)
    _, before = timed("before: fixed batches of 16", tokenizer,
                      lambda: infer.generate(model, tokenizer, prompts, MAX_NEW, batch_size=16), prompts,
                      flops, peak)
    batched, after = timed("now: token budget 16384, up to 96 prompts", tokenizer,
                           lambda: infer.generate(model, tokenizer, prompts, MAX_NEW, batch_size=96,
                                                  batch_tokens=16384), prompts, flops, peak)
    same = sum(a == b for a, b in zip(naive, batched[:NAIVE_N]))
    print(f"speed-up over the fixed batch of 16: {after / before:.2f}x; over the naive loop: {after / naive_rate:.1f}x")
    print(f"batched outputs equal to the one-at-a-time loop: {same}/{NAIVE_N}")


if __name__ == "__main__":
    main()
