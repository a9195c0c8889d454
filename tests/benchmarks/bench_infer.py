"""Evaluation throughput of the default student: the token-budget batches of eotd.infer vs the fixed batch of 16 the
evaluation used before, vs a naive one-at-a-time generate loop; and whether the batched outputs equal the naive ones.
Each rate also as achieved GFLOP/s (2 x the non-embedding params per prompt token, plus the output layer per generated
token; attention and padding left out) and as a share of the matmul peak of the inference dtype, measured in the same
run.

Run: .venv/bin/python tests/benchmarks/bench_infer.py [--student NAME_OR_FOLDER]   (about 4 minutes on 2 cores)
A trained student (its final/ folder) shows the effect of stopping at the end token; the untrained default student
rarely stops, so every prompt there runs to max_new_tokens.

`--engines` (after `pip install -e '.[engines]'`, on a trained student's folder) instead compares, in one run, eotd.infer
with CTranslate2 (fp32 and int8; its CPU build has no bf16) on the first 200 SVAMP prompts with the PoT trigger, greedy,
up to 96 new tokens: problems/s, conversion time, and how many outputs equal eotd.infer's (EOTD_DATA_DIR names the
benchmark folder).
"""
import argparse
import time

import torch
from bench_train import matmul_peak

from eotd import infer, machine, models, protocol
from eotd.data import load, load_gsm_symbolic

N, NAIVE_N, MAX_NEW = 96, 16, 64


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
    """eotd.infer (the model's inference dtype) against CTranslate2 fp32 and int8 on the same prompts, in one run."""
    import tempfile

    import ctranslate2

    prompts = [protocol.student_input(p.question, "pot") for p in list(load("svamp"))[:200]]
    model, tokenizer = models.load_for_inference(student)
    stops = [tokenizer.convert_ids_to_tokens(i) for i in infer.stop_ids(model, tokenizer)]
    print(f"{student}: 200 SVAMP PoT prompts, greedy, up to 96 new tokens; {machine.describe()}")
    start = time.perf_counter()
    reference = [o.strip() for o in infer.generate(model, tokenizer, prompts, 96, batch_size=64, batch_tokens=8192)]
    elapsed = time.perf_counter() - start
    print(f"{'eotd.infer (' + str(model.dtype).removeprefix('torch.') + ')':>28}: {len(prompts) / elapsed:5.2f} problems/s")
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
            results = generator.generate_batch(tokens, max_length=96, sampling_topk=1, include_prompt_in_result=False,
                                               end_token=stops, max_batch_size=64)
            elapsed = time.perf_counter() - start
        outputs = [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in results]
        same = sum(a == b for a, b in zip(reference, outputs))
        print(f"{'CTranslate2 ' + compute_type:>28}: {len(prompts) / elapsed:5.2f} problems/s (conversion "
              f"{converted:.0f} s); {same}/{len(prompts)} outputs equal to eotd.infer's")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", default=models.DEFAULT_STUDENT)
    parser.add_argument("--engines", action="store_true", help="compare with CTranslate2 (needs .[engines])")
    args = parser.parse_args()
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
