"""Training throughput of the real default student (SmolLM2-135M) on this machine.

Prints the measured matmul peak (2048x2048, fp32 and bf16), then eotd.train on PoT rationales of the default tier
for a few optimizer steps per setting: fixed 8 examples vs token-budget micro-batches (the default's 512 and larger),
full fine-tune vs PEFT LoRA (rank 16, every linear layer), in the precision training uses here (bf16 autocast where
the hardware has it, else fp32). Each with tokens/s and, for the full fine-tune, achieved GFLOP/s (~ 6 x params x
tokens/s) as a share of that precision's matmul peak measured in the same run; LoRA skips the weight gradients
(~ 4 x params per token), so its row gives its speed-up over the full fine-tune at the same batching instead.
Before those, the parts of a step eotd.train chose against their alternatives (fused AdamW, matmul attention on the
CPU); `--parts` stops after them (about 2 minutes). `--full` adds the fp32 run and the check that accelerate's bf16
really autocasts on CPU; `--compile` times one forward+backward of a batch of 6 rationales (~1 200 padded tokens)
eager vs `torch.compile`d (inductor; the first call compiles).
Run: .venv/bin/python tests/benchmarks/bench_train.py [--parts] [--full] [--compile]   (about 10 minutes on 2 cores)
"""
import tempfile
import time
from pathlib import Path

import torch

from eotd import models
from eotd.data import load_gsm_symbolic
from eotd.teachers.annotation import rationale_rows
from eotd.train import TrainConfig, batches, build_examples, collate, loss_of, resolve_mixed_precision, train

STUDENT = models.DEFAULT_STUDENT
STEPS, BATCH = 4, 8


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def step_time(model, batch, autocast) -> float:
    """One forward+backward (after one warm-up) under the given context factory."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with autocast():
            loss = model(**batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times[-1]


def autocast_check(rows) -> None:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    model, tok = models.load(STUDENT)
    model.train()
    examples = build_examples(rows[:4], tok, False, TrainConfig(max_source_len=64, max_target_len=64))
    batch = collate(examples, tok.pad_token_id, False)
    batch.pop("n_tokens")
    dtypes = []
    hook = model.model.layers[0].self_attn.q_proj.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    fp32 = step_time(model, batch, lambda: torch.autocast("cpu", enabled=False))
    manual = step_time(model, batch, lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    prepared = accelerator.prepare(model)
    dtypes.clear()
    acc = step_time(prepared, batch, accelerator.autocast)
    hook.remove()
    print(f"accelerate {accelerator.mixed_precision!r} on CPU: inner linear output dtype {dtypes[-1]} -> "
          f"{'autocasts as-is' if dtypes[-1] == torch.bfloat16 else 'does NOT autocast'}")
    print(f"  fwd+bwd, 4 x {batch['input_ids'].shape[1]} tokens: fp32 {fp32:.2f} s, torch.autocast bf16 "
          f"{manual:.2f} s, accelerate bf16 {acc:.2f} s")
    del model, prepared, accelerator


def compile_check(rows) -> None:
    """One forward+backward of a batch of 6 rationales in fp32, eager vs torch.compile (after the compiling call)."""
    model, tok = models.load(STUDENT)
    model.train()
    batch = collate(build_examples(rows[:6], tok, False, TrainConfig()), tok.pad_token_id, False)
    batch.pop("n_tokens")
    tokens = batch["input_ids"].numel()
    fp32 = lambda: torch.autocast("cpu", enabled=False)  # noqa: E731
    eager = step_time(model, batch, fp32)
    start = time.perf_counter()
    compiled = torch.compile(model)
    step_time(compiled, batch, fp32)
    first = time.perf_counter() - start
    fast = step_time(compiled, batch, fp32)
    print(f"torch.compile (fp32, {tokens} tokens fwd+bwd): eager {eager:.2f} s, compiled {fast:.2f} s "
          f"({eager / fast:.2f}x) after {first:.0f} s of compiling and warm-up")
    del model, compiled


def step_parts(rows) -> None:
    """What eotd.train chose for a step, each against the alternative in the same process: AdamW fused vs its
    per-tensor loop (one step over the student's parameters), and matmul ("eager") vs SDPA attention for a bf16
    autocast (or fp32) forward+backward, alternated over fresh 512-token batches so drift hits both alike."""
    model, tok = models.load(STUDENT)
    model.train()
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    for fused in (False, True):
        optimizer = torch.optim.AdamW(params, lr=1e-5, fused=fused)
        optimizer.step()
        start = time.perf_counter()
        for _ in range(3):
            optimizer.step()
        print(f"AdamW step, {'fused' if fused else 'per-tensor loop'}: {(time.perf_counter() - start) / 3:.2f} s")
    model.zero_grad(set_to_none=True)
    examples = build_examples(rows, tok, False, TrainConfig())
    groups = batches(examples, BATCH, 0, 0, batch_tokens=512)
    bf16 = resolve_mixed_precision("auto") == "bf16"
    rates = {"sdpa": [], "eager": []}
    for k, attention in enumerate(["sdpa", "eager", "eager", "sdpa", "sdpa", "eager"]):
        model.set_attn_implementation(attention)
        chunk = groups[1 + 6 * k:7 + 6 * k]
        start = time.perf_counter()
        for indices in chunk:
            batch = collate([examples[i] for i in indices], tok.pad_token_id, False, trim_logits=True)
            batch.pop("n_tokens")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_of(model, batch)
            loss.backward()
            model.zero_grad(set_to_none=True)
        rates[attention].append(sum(len(examples[i]["input_ids"]) for b in chunk for i in b)
                                / (time.perf_counter() - start))
    sdpa, eager = (sum(rates[a]) / len(rates[a]) for a in ("sdpa", "eager"))
    print(f"fwd+bwd, 512-token batches ({'bf16' if bf16 else 'fp32'}): SDPA attention {sdpa:.0f} tok/s, "
          f"matmul attention {eager:.0f} tok/s ({eager / sdpa:.2f}x)")
    del model


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="also fp32 and the accelerate autocast check")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile against eager")
    parser.add_argument("--parts", action="store_true", help="only the optimizer and attention comparisons")
    args = parser.parse_args()
    full = args.full
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bf16 = resolve_mixed_precision("auto") == "bf16"
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16) if bf16 else float("nan")}
    print(f"matmul 2048x2048 peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 "
          + (f"{peak['bf16']:.0f} GFLOP/s" if bf16 else "not measured (no native bf16 on this machine: emulated)"))

    rows = rationale_rows(load_gsm_symbolic(160, seed=0))
    models.resolve(STUDENT)  # build the converted copy outside the timings
    step_parts(rows)
    if args.parts:
        return
    if full and resolve_mixed_precision("auto") == "bf16":
        autocast_check(rows)

    model, _ = models.load(STUDENT)
    params = sum(p.numel() for p in model.parameters())
    del model
    # what training uses here: bf16 autocast where the CPU/GPU has bf16, else fp32 (emulated bf16 is ~100x slower)
    precision = resolve_mixed_precision("auto")
    key = "bf16" if precision == "bf16" else "fp32"
    settings = [(precision, key, {"batch_size": BATCH}), (precision, key, {"batch_tokens": 512}),
                (precision, key, {"batch_tokens": 512, "lora_rank": 16}), (precision, key, {"batch_tokens": 2048}),
                (precision, key, {"batch_tokens": 2048, "lora_rank": 16}), (precision, key, {"batch_tokens": 4096})]
    if full and precision == "bf16":
        settings.append(("no", "fp32", {"batch_size": BATCH}))
    print(f"{STUDENT}: {params / 1e6:.1f} M params; {STEPS} optimizer steps per setting on {len(rows)} PoT rows")
    full_rate = {}
    for precision, peak_key, batching in settings:
        config = TrainConfig(epochs=1.0, mixed_precision=precision, checkpoint_every=1000, **batching)
        with tempfile.TemporaryDirectory() as out:
            result = train(STUDENT, rows, Path(out), config, progress=False, stop_after_steps=STEPS)
        timed = result.losses[1:]  # the first step carries warm-up costs
        seconds = sum(x["tokens"] / x["tokens_per_s"] for x in timed)
        tokens = sum(x["tokens"] for x in timed)
        tok_s = tokens / seconds
        gflops = 6 * params * tok_s / 1e9
        same_batching = (peak_key, batching.get("batch_tokens"), batching.get("batch_size"))
        if "lora_rank" in batching:
            share = f"{tok_s / full_rate[same_batching]:.2f}x the full fine-tune's tokens/s"
        else:
            full_rate[same_batching] = tok_s
            share = f"{gflops:.0f} GFLOP/s = {gflops / peak[peak_key]:.0%} of the {peak_key} matmul peak"
        print(f"  {peak_key} {batching}: steps 2-{result.steps}: {tokens / len(timed):.0f} tokens/step, "
              f"{seconds / len(timed):.1f} s/step, {tok_s:.0f} tok/s, {share}", flush=True)
    if args.compile:
        compile_check(rows)


if __name__ == "__main__":
    main()
