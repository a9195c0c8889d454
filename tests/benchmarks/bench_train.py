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

Packing and torch.compile on the default tier's own training rows (needs its verification cache, EOTD_CACHE_DIR):
`--packing-steps ROUNDS` runs today's token-budget batches and packed fixed-length rows of 512 tokens, each eager and
with the decoder layers compiled, in interleaved turns in one process (the first turn, which compiles, timed apart);
`--packing ROUNDS` trains whole students per setting and compares their held-out loss; `--compile-cache` times the
compiling in a first and a second process sharing an inductor cache. Every timed run also says how much CPU other
processes took meanwhile.
"""
import contextlib
import dataclasses
import os
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


class Others:
    """CPU time other processes take on this machine (cores' worth) while a measurement runs: other engineers' tests
    share the cores, and two torch processes on two cores slow each other several-fold, so every timed run says how
    busy the machine was, and `wait` holds a run back until the machine is quiet (or `patience` seconds passed)."""
    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self):
        self.start = self._snap()

    @classmethod
    def _snap(cls) -> tuple[float, float, float]:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        own = os.times()
        return ((sum(ticks) - ticks[3] - ticks[4]) / cls.TICK,
                own.user + own.system + own.children_user + own.children_system, time.monotonic())

    def cores(self) -> float:
        """Cores' worth of CPU other processes used since this meter started."""
        busy, own, now = self._snap()
        return max(0.0, (busy - self.start[0]) - (own - self.start[1])) / max(now - self.start[2], 1e-9)

    @classmethod
    def wait(cls, below: float = 0.3, patience: float = 300.0) -> float:
        """Wait until other processes used under `below` cores over 3 s, at most `patience` seconds; their load."""
        deadline = time.monotonic() + patience
        while True:
            meter = cls()
            time.sleep(3)
            load = meter.cores()
            if load < below or time.monotonic() > deadline:
                return load


QUIET = 0.2  # cores other processes may take during a round that counts in a summary


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


def default_rows(method: str) -> tuple[object, list[dict]]:
    """The default tier's params and `method`'s verified training rows (02's splits under .cache/verification)."""
    from eotd import params, students, verification

    p = params.load("params/default.yaml")
    try:
        splits = verification.load_train_splits(p)
    except FileNotFoundError as err:
        raise SystemExit(f"{err}: EOTD_DATA_DIR=../shared/data python -m eotd.synthesis params/default.yaml && "
                         "EOTD_DATA_DIR=../shared/data python -m eotd.verification params/default.yaml") from None
    return p, students.training_rows(p, splits, method)


def held_out_loss(path: Path, rows: list[dict], config: TrainConfig) -> float:
    """Mean next-token loss per rationale token of a trained student on `rows` (eager, bf16 autocast where the
    training used it), batches of 8 right-padded rows."""
    model, tok = models.load(str(path))
    examples = build_examples(rows, tok, False, config)
    total, count = 0.0, 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                 enabled=resolve_mixed_precision("auto") == "bf16"):
        for start in range(0, len(examples), 8):
            chunk = examples[start:start + 8]
            batch = collate(chunk, tok.pad_token_id, False)
            batch.pop("n_tokens")
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(loss_of(model, batch)) * n
            count += n
    return total / count


# ------------------------------------------------------------------------- packing and torch.compile (not adopted)
# Measured against today's token-budget batches on the default tier (docs/performance.md, "Training"): packing whole
# examples into fixed rows of 512 tokens, with and without torch.compile of the decoder layers. eotd.train keeps its
# token-budget batches; the variants live here, swapped into eotd.train for a run by `variant`.

def packs(examples: list[dict], width: int, seed: int, epoch: int) -> list[list[int]]:
    """Example indices grouped into packs of at most `width` tokens, every example once per epoch, order fixed by
    (seed, epoch): first fit over a seeded shuffle (a pack mixes lengths and fills to within a short example of
    `width`), then the packs shuffled."""
    import random

    rng = random.Random(f"eotd-pack-{seed}-{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    out: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = len(examples[i]["input_ids"])
        k = next((j for j, room in enumerate(free) if n <= room), None)
        if k is None:
            out.append([i])
            free.append(width - n)
        else:
            out[k].append(i)
            free[k] -= n
    rng.shuffle(out)
    return out


def pack_width(examples: list[dict], batch_tokens: int) -> int:
    """The one row width of a packed run: batch_tokens, or the longest example where that is longer."""
    return max([batch_tokens] + [len(e["input_ids"]) for e in examples])


def collate_packed(examples: list[dict], pad_id: int, width: int) -> dict:
    """One row of `width` tokens holding the (causal) examples whole, one after another, then padding. Positions
    restart at 0 with each example and no attention mask is passed, so transformers builds a block-diagonal causal
    mask from the positions (masking_utils.find_packed_sequence_indices): no token attends across an example
    boundary and each example computes as it would alone (`packed_matches_padded` checks the loss against a padded
    batch's before --packing-steps measures).
    `logits_to_keep` holds the positions whose next token is a label, `labels` those next tokens; an example's first
    token (a prompt token) is never a target, so no label crosses a boundary."""
    ids: list[int] = []
    positions: list[int] = []
    labels: list[int] = []
    for e in examples:
        ids += e["input_ids"]
        positions += range(len(e["input_ids"]))
        labels += [-100] + list(e["labels"][1:])
    n = len(ids)
    ids += [pad_id] * (width - n)
    positions += range(width - n)
    labels += [-100] * (width - n)
    targets = torch.tensor(labels)
    keep = (targets[1:] != -100).nonzero().squeeze(-1)
    return {"input_ids": torch.tensor([ids]), "position_ids": torch.tensor([positions]), "logits_to_keep": keep,
            "labels": targets[keep + 1], "n_tokens": torch.tensor(n)}


def variant_loss(model, batch: dict) -> torch.Tensor:
    """eotd.train.loss_of, plus packed rows (a 1-D logits_to_keep), and never a KV cache (a compiled decoder layer
    would otherwise meet transformers' cache updates and recompile)."""
    keep = batch.get("logits_to_keep")
    if keep is None or keep.ndim == 0:
        return loss_of(model, {**batch, "use_cache": False})
    inputs = {k: v for k, v in batch.items() if k not in ("logits_to_keep", "labels")}
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits[0]
    return torch.nn.functional.cross_entropy(logits.float(), batch["labels"])


def compile_layers(model) -> list:
    """torch.compile each repeated block (the `_no_split_modules` classes: the decoder layers) in place; the blocks
    share one compiled graph, so compiling costs about one block's time. Returns the blocks."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    for block in blocks:
        block.compile()
    return blocks
@contextlib.contextmanager
def variant(pack: bool = False, compiled: bool = False):
    """eotd.train with packed rows of batch_tokens (pack) and/or its student's decoder layers torch.compiled, for the
    train() calls inside: swaps eotd.train's batching, collate and loss, and wraps models.load."""
    from eotd import train as train_module

    saved = {name: getattr(train_module, name) for name in ("batches", "collate", "loss_of")}
    load = models.load
    width = [0]

    def packed_batches(examples, batch_size, seed, epoch, batch_tokens=None):
        width[0] = pack_width(examples, batch_tokens)
        return packs(examples, width[0], seed, epoch)

    def loading(*args, **kwargs):
        model, tokenizer = load(*args, **kwargs)
        if compiled:
            compile_layers(model)
        return model, tokenizer

    if pack:
        train_module.batches = packed_batches
        train_module.collate = lambda b, pad_id, seq2seq, trim=False: collate_packed(b, pad_id, width[0])
    train_module.loss_of = variant_loss
    models.load = loading
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(train_module, name, fn)
        models.load = load


PACKING_SETTINGS = {"today": ("today: token-budget batches (batch_tokens 512), eager", {}),
                    "packed": ("packed, one row of 512 tokens", {"pack": True}),
                    "packed-compiled": ("packed 512 + torch.compile (decoder layers)", {"pack": True, "compiled": True}),
                    "compiled": ("token-budget batches + torch.compile (decoder layers)", {"compiled": True})}


def packing(method: str, rounds: int, which: list[str]) -> None:
    """Each setting trains a whole default-tier student (one epoch of `method`'s rows less every 10th, held out), in
    rounds A, B, C, A, B, C, ...; a round's settings share the data seed (round r: seed r). Prints per run: real
    (non-padding) tokens/s over steps 2-n, the first step's seconds (compiling included), the whole call's seconds
    (load and save included), the held-out loss per rationale token and the mean training loss over the epoch's last
    quarter of tokens; then each setting's speed and loss against the first setting, per round and as the median."""
    import statistics

    from eotd import students

    settings = [PACKING_SETTINGS[key] for key in ["today", *which]]
    p, rows = default_rows(method)
    train_rows = [r for i, r in enumerate(rows) if i % 10]
    held_out = [r for i, r in enumerate(rows) if not i % 10]
    base = dataclasses.replace(students.train_config(p), log_with="none", checkpoint_every=0, checkpoint_minutes=None)
    print(f"{method} of the default tier: {len(train_rows)} rows to train, {len(held_out)} held out; "
          f"batch_tokens {base.batch_tokens}, lr {base.lr}, 1 epoch; {rounds} rounds of {len(settings)} settings, "
          f"interleaved; inductor cache {os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}", flush=True)
    runs: dict[str, list[dict]] = {label: [] for label, _ in settings}
    for r in range(rounds):
        for label, flags in settings:
            quiet = Others.wait()
            meter = Others()
            config = dataclasses.replace(base, seed=r)
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                with variant(**flags):
                    result = train(STUDENT, train_rows, Path(out), config, progress=False)
                wall = time.perf_counter() - start
                others = meter.cores()
                loss = held_out_loss(result.path, held_out, config)
            steps = result.losses
            seconds = [x["tokens"] / x["tokens_per_s"] for x in steps]
            tail, seen, late = sum(x["tokens"] for x in steps) * 0.75, 0, []
            for x in steps:
                seen += x["tokens"]
                if seen > tail:
                    late.append(x["loss"])
            run = {"tok_s": sum(x["tokens"] for x in steps[1:]) / sum(seconds[1:]), "first": seconds[0],
                   "wall": wall, "loss": loss, "late": statistics.mean(late), "steps": len(steps),
                   "tokens": result.train_tokens, "others": others}
            runs[label].append(run)
            print(f"  round {r} {label}: {run['steps']} steps, {run['tokens']} tokens, {run['tok_s']:.0f} tok/s "
                  f"(steps 2-n), first step {run['first']:.1f} s, call {wall:.0f} s; held-out loss {loss:.4f}, "
                  f"last-quarter training loss {run['late']:.4f}; other processes {others:.2f} cores "
                  f"(before: {quiet:.2f})", flush=True)
    first = settings[0][0]
    for label, _ in settings[1:]:
        pairs = list(zip(runs[first], runs[label]))
        quiet = [(a, b) for a, b in pairs if max(a["others"], b["others"]) < QUIET] or pairs
        speed = [b["tok_s"] / a["tok_s"] for a, b in quiet]
        loss = [b["loss"] - a["loss"] for a, b in pairs]
        print(f"{label} vs {first}: tokens/s x{statistics.median(speed):.2f} ({len(quiet)} quiet rounds: "
              f"{', '.join(f'{x:.2f}' for x in speed)}); held-out loss {statistics.median(loss):+.4f} (rounds: "
              f"{', '.join(f'{x:+.4f}' for x in loss)})", flush=True)


def packed_matches_padded(model, tok, examples: list[dict], feeds: dict, width: int) -> None:
    """The first pack's loss (fp32, no autocast) equals that of the same examples as a padded batch, or SystemExit:
    a packed row whose examples attended to each other would measure another computation."""
    first = packs(examples, width, 0, 0)[0]
    with torch.no_grad():
        packed = float(variant_loss(model, collate_packed([examples[i] for i in first], tok.pad_token_id, width)))
        padded = collate([examples[i] for i in first], tok.pad_token_id, False, True)
        padded.pop("n_tokens")
        reference = float(variant_loss(model, padded))
    print(f"first pack ({len(first)} examples): loss packed {packed:.5f}, padded batch {reference:.5f}", flush=True)
    if abs(packed - reference) > 1e-3 * abs(reference):
        raise SystemExit("packed rows do not compute what padded batches do: the measurement would compare other work")


def packing_steps(method: str, rounds: int, chunk: int = 6) -> None:
    """Tokens/s of four ways to run the default's training steps, interleaved finely in one process: one model and
    one fused AdamW take turns of `chunk` micro-batches per setting (today's token-budget batches or packed rows of
    512, each eager or with its decoder layers torch.compiled), round after round, so a drift of the machine's speed
    hits all four alike. A step is eotd.train's: bf16 autocast where supported, the loss, backward, gradient
    clipping, AdamW (lr 1e-6: the weights barely move). The first turn of each, which compiles (once for the packed
    rows' static shape, a few times for today's varying shapes), is timed apart."""
    import statistics

    p, rows = default_rows(method)
    model, tok = models.load(STUDENT)
    model.set_attn_implementation("eager")  # as eotd.train on the CPU
    model.train()
    config = dataclasses.replace(TrainConfig(), max_source_len=p.max_source_len, max_target_len=p.max_target_len)
    examples = build_examples(rows, tok, False, config)
    width = pack_width(examples, p.batch_tokens)
    feeds = {"today": [collate([examples[i] for i in b], tok.pad_token_id, False, True)
                       for b in batches(examples, BATCH, 0, 0, p.batch_tokens)],
             "packed": [collate_packed([examples[i] for i in b], tok.pad_token_id, width)
                        for b in packs(examples, width, 0, 0)]}
    packed_matches_padded(model, tok, examples, feeds, width)
    blocks = compile_layers(model)
    compiled = [m._compiled_call_impl for m in blocks]

    def use_compiled(on: bool) -> None:
        for m, fn in zip(blocks, compiled):
            m._compiled_call_impl = fn if on else None

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    bf16 = resolve_mixed_precision("auto") == "bf16"

    def run(feed: str, k: int) -> tuple[int, float]:
        items = feeds[feed]
        chosen = [items[(k * chunk + j) % len(items)] for j in range(chunk)]
        tokens = sum(int(b["n_tokens"]) for b in chosen)
        start = time.perf_counter()
        for b in chosen:
            b = {key: value for key, value in b.items() if key != "n_tokens"}
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = variant_loss(model, b)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
        return tokens, time.perf_counter() - start

    settings = [("today, eager", "today", False), ("packed 512, eager", "packed", False),
                ("packed 512, compiled", "packed", True), ("today, compiled (varying shapes)", "today", True)]
    print(f"{method} rows of the default tier: {len(feeds['today'])} token-budget batches "
          f"({sum(int(b['n_tokens']) for b in feeds['today'])} tokens, "
          f"{sum(b['input_ids'].numel() for b in feeds['today'])} with padding) vs {len(feeds['packed'])} packed rows "
          f"of {width}; turns of {chunk} micro-batches, {rounds} rounds; inductor cache "
          f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}", flush=True)
    for label, feed, on in settings:  # warm-up turn: allocations, and the compiling
        use_compiled(on)
        tokens, seconds = run(feed, 0)
        print(f"  first turn, {label}: {seconds:.1f} s for {tokens} tokens", flush=True)
    rates: dict[str, list[float]] = {label: [] for label, _, _ in settings}
    loads = []
    for r in range(1, rounds + 1):
        Others.wait()
        meter = Others()
        for label, feed, on in settings:
            use_compiled(on)
            tokens, seconds = run(feed, r)
            rates[label].append(tokens / seconds)
        loads.append(meter.cores())
        print(f"  round {r}: " + ", ".join(f"{label} {rates[label][-1]:.0f}" for label, _, _ in settings)
              + f" tok/s; other processes {loads[-1]:.2f} cores", flush=True)
    first = settings[0][0]
    quiet = [k for k, load in enumerate(loads) if load < QUIET] or list(range(len(loads)))
    print(f"over the {len(quiet)} rounds in which other processes took under {QUIET} cores:")
    for label, _, _ in settings:
        ratios = sorted(rates[label][k] / rates[first][k] for k in quiet)
        print(f"  {label}: median {statistics.median(rates[label][k] for k in quiet):.0f} real tok/s, "
              f"x{statistics.median(ratios):.2f} today's eager rate (per-round ratios {ratios[0]:.2f}-{ratios[-1]:.2f})",
              flush=True)


def compile_probe(steps: int = 3) -> None:
    """A fresh process's first steps of a compiled default-tier run on today's batches: how long the first
    (compiling) steps take with the inductor cache as it is (TORCHINDUCTOR_CACHE_DIR)."""
    from eotd import students

    p, rows = default_rows("PoTD")
    config = dataclasses.replace(students.train_config(p), log_with="none")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, variant(compiled=True):
        result = train(STUDENT, rows, Path(out), config, progress=False, stop_after_steps=steps)
    seconds = [x["tokens"] / x["tokens_per_s"] for x in result.losses]
    print(f"compiled: steps {', '.join(f'{x:.1f}' for x in seconds)} s; the call {time.perf_counter() - start:.0f} s",
          flush=True)


def compile_cache() -> None:
    """The compile cost per process: the same probe in two fresh processes sharing an empty inductor cache (the
    first compiles and fills the cache on disk, the second reads it)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as cache:
        for which in ("first process, empty inductor cache", "second process, the cache the first filled"):
            Others.wait()
            print(f"{which}: ", end="", flush=True)
            subprocess.run([sys.executable, __file__, "--compile-probe"], check=True,
                           env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache})


def resident_mb() -> tuple[int, int]:
    """(now, peak) resident memory of this process in MB."""
    from eotd.runinfo import peak_rss_mb

    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) // 1024, peak_rss_mb()


def memory_run(students: int, rows_per_student: int, trim: bool) -> None:
    """`students` default-tier PoTD students (the first rows) trained one after another in this process: resident
    memory after each, and the peak so far; without `trim`, eotd.machine.trim_heap is switched off."""
    from eotd import machine, students as students_module

    if not trim:
        machine.trim_heap = lambda: False
    p, rows = default_rows("PoTD")
    config = dataclasses.replace(students_module.train_config(p), log_with="none")
    cells = []
    for seed in range(students):
        with tempfile.TemporaryDirectory() as out:
            train(STUDENT, rows[:rows_per_student], Path(out), dataclasses.replace(config, seed=seed), progress=False)
        cells.append("{} / {}".format(*resident_mb()))
    print(f"heap trimmed after each student: {trim}; resident / peak MB after each: {', '.join(cells)}", flush=True)


def memory(students: int, rows_per_student: int = 60) -> None:
    """Resident memory across students trained in one process, with and without trimming the heap between them,
    each in a fresh process."""
    import subprocess
    import sys

    from eotd import machine

    print(f"{students} PoTD students of {rows_per_student} rows each, one process per setting; "
          f"{machine.describe()}", flush=True)
    for trim in (False, True):
        subprocess.run([sys.executable, __file__, "--memory-run", str(students), str(rows_per_student), str(int(trim))],
                       check=True)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="also fp32 and the accelerate autocast check")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile against eager")
    parser.add_argument("--parts", action="store_true", help="only the optimizer and attention comparisons")
    parser.add_argument("--packing", type=int, metavar="ROUNDS", help="only: today's batches vs packed rows vs "
                        "packed + torch.compile, whole default-tier students, ROUNDS interleaved rounds")
    parser.add_argument("--packing-steps", type=int, metavar="ROUNDS", help="only: the same four ways (eager or "
                        "compiled, today's batches or packed) step by step in one process, ROUNDS interleaved rounds")
    parser.add_argument("--settings", nargs="+", default=["packed", "packed-compiled"],
                        choices=[k for k in PACKING_SETTINGS if k != "today"],
                        help="what --packing compares with today's eager token-budget batches")
    parser.add_argument("--method", default="PoTD", help="the default-tier method whose rows --packing trains on")
    parser.add_argument("--compile-cache", action="store_true", help="only: compile time in a first and a second "
                        "process sharing an inductor cache")
    parser.add_argument("--compile-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory", type=int, metavar="STUDENTS", help="only: resident memory across STUDENTS "
                        "students trained in one process, with and without trimming the heap between them")
    parser.add_argument("--memory-run", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        return memory(args.memory)
    if args.memory_run:
        return memory_run(args.memory_run[0], args.memory_run[1], bool(args.memory_run[2]))
    if args.compile_probe:
        return compile_probe()
    if args.compile_cache:
        return compile_cache()
    if args.packing:
        return packing(args.method, args.packing, args.settings)
    if args.packing_steps:
        return packing_steps(args.method, args.packing_steps)
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
