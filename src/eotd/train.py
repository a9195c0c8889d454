"""Fine-tune a student on verified rationales with 🤗 accelerate (full fine-tune, fp32 master weights).

Input: `formats.student_input(question, thought)` (`Question: <q>\\n<trigger>\\n`); target: the rationale + EOS.
Causal students learn on the rationale tokens only (labels are -100 on the prompt); seq2seq students get the prompt
as encoder input and the rationale as decoder labels.

Running
- CPU or one GPU: just call `train(...)` (no launcher needed). `mixed_precision="auto"` means bf16 autocast where the
  hardware supports it (CUDA with bf16, or a CPU with avx512_bf16/amx_bf16), else fp32. Weights always stay fp32:
  pure bf16 weights lose most AdamW updates at lr 5e-5 (measured here); only the compute is autocast.
- Multi-GPU / DeepSpeed / FSDP: put the call in a script and start it with
      accelerate launch --config_file accelerate.yaml my_train_script.py
  (the config file from `accelerate config`). Every process runs `train()`; batches are sharded across processes by
  accelerate's dataloader, the model/optimizer/scheduler go through `accelerator.prepare`, and only the main process
  writes files. `TrainConfig.mixed_precision` overrides the config file's mixed precision.

Data order is deterministic (seed + epoch), so a killed run resumes from `out_dir/checkpoint` (saved every
`checkpoint_every` optimizer steps with `accelerator.save_state`, RNG states included) by skipping the batches already
done in the current epoch, and reproduces the loss curve of an uninterrupted run. `out_dir/final` holds the trained
model + tokenizer (`from_pretrained` works on it) and `out_dir/done.json` the config, data hash, losses and timings;
a rerun with the same student, config and data is skipped.

On accelerate 1.15 + torch 2.13 (CPU), `Accelerator(mixed_precision="bf16", cpu=True)` really autocasts: prepare()
wraps the model's forward in `torch.autocast("cpu", bfloat16)` (outputs converted back to fp32) and
`accelerator.autocast()` enables CPU autocast too, so no hand-written `torch.autocast` is needed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from eotd import formats, models, records

CHECKPOINT = "checkpoint"
FINAL = "final"
DONE = "done.json"
STATE_FILE = "eotd_train_state.json"
MEGA_BATCH = 50  # batches per length-sorting window


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0
    lr: float = 5e-5
    batch_size: int = 8  # examples per micro-batch (when batch_tokens is None)
    batch_tokens: int | None = None  # token budget per micro-batch: as many examples as fit, counted padded
    grad_accum: int = 1
    max_source_len: int = 256
    max_target_len: int = 256
    seed: int = 0
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    checkpoint_every: int = 50  # optimizer steps
    mixed_precision: str = "auto"  # "auto" = bf16 where the hardware supports it (CPU avx512_bf16, or CUDA), else "no"
    max_grad_norm: float | None = 1.0  # gradient clipping (None/0 = off)


@dataclass
class TrainResult:
    path: Path  # the final transformers folder
    losses: list[dict]  # one per optimizer step: step, epoch, loss, tokens, tokens_per_s, lr
    steps: int
    skipped: bool
    train_tokens: int
    seconds: float
    model: object = field(default=None, repr=False)  # the trained model in memory (eval mode); None when skipped


# ----------------------------------------------------------------------------------------------------------- data

def _tokens(tokenizer, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def build_examples(rows: list[dict], tokenizer, seq2seq: bool, config: TrainConfig) -> list[dict]:
    """Tokenised examples: {"input_ids", "labels"}; truncated to max_source_len (prompt) / max_target_len (target).

    Causal: input_ids = prompt + rationale + eos, labels = -100 on the prompt tokens and the same ids elsewhere.
    Seq2seq: input_ids = prompt (encoder), labels = rationale + eos (decoder).
    A target longer than max_target_len is cut and then has no eos.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos token")
    examples = []
    for row in rows:
        prompt = _tokens(tokenizer, formats.student_input(row["question"], row["thought"]), special=True)
        if not seq2seq and len(prompt) > 1 and prompt[-1] == eos:
            prompt = prompt[:-1]  # a causal prompt must not end the text
        prompt = prompt[:config.max_source_len]
        target = (_tokens(tokenizer, row["rationale"], special=False) + [eos])[:config.max_target_len]
        if seq2seq:
            examples.append({"input_ids": prompt, "labels": target})
        else:
            examples.append({"input_ids": prompt + target, "labels": [-100] * len(prompt) + target})
    return examples


def _length(example: dict) -> int:
    ids, labels = example["input_ids"], example["labels"]
    return len(ids) if len(labels) == len(ids) else len(ids) + len(labels)


def batches(examples: list[dict], batch_size: int, seed: int, epoch: int,
            batch_tokens: int | None = None) -> list[list[int]]:
    """Example indices grouped into batches: every example once per epoch, order fixed by (seed, epoch).

    Shuffle, then sort by length inside mega-batches of MEGA_BATCH x batch_size so each batch pads little, then
    shuffle the batch order (long and short batches alternate instead of running in length order). With
    `batch_tokens`, a batch takes examples while (examples x its longest) stays within the budget, so short
    examples travel in large batches and long ones in small batches: fewer, fuller matmuls for the same tokens.
    """
    rng = random.Random(f"eotd-train-{seed}-{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = MEGA_BATCH * batch_size
    out = []
    for start in range(0, len(order), window):
        mega = sorted(order[start:start + window], key=lambda i: _length(examples[i]), reverse=True)
        if batch_tokens is None:
            out.extend(mega[i:i + batch_size] for i in range(0, len(mega), batch_size))
            continue
        batch: list[int] = []
        for i in mega:  # longest first: the batch's first example sets its padded width
            if batch and (len(batch) + 1) * _length(examples[batch[0]]) > batch_tokens:
                out.append(batch)
                batch = []
            batch.append(i)
        out.append(batch)
    rng.shuffle(out)
    return out


def warmup_then_linear(warmup: int, total: int):
    """LR multiplier per scheduler step: a linear ramp that starts above zero (the first step already learns), then
    linear decay that ends above zero (the last step too)."""
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / max(1, warmup)) * min(1.0, (total - step) / max(1, total - warmup))
    return factor


def collate(examples: list[dict], pad_id: int, seq2seq: bool, trim_logits: bool = False) -> dict:
    """Dynamic padding to the longest example of the batch; labels padded with -100.

    With `trim_logits` (causal models whose forward takes `logits_to_keep`), rows are padded on the left so every
    rationale ends at the last position, and the batch says how many trailing positions need logits: the output
    layer (49152 words for SmolLM2, a fifth of the model's FLOPs) then runs on the rationale tokens only, not on
    the prompt and the padding. RoPE attention depends on relative positions only, so left padding changes nothing.
    """
    left = trim_logits and not seq2seq

    def pad(seqs, value):
        width = max(len(s) for s in seqs)
        return torch.tensor([([value] * (width - len(s)) if left else []) + list(s)
                             + ([] if left else [value] * (width - len(s))) for s in seqs], dtype=torch.long)

    ids = [e["input_ids"] for e in examples]
    batch = {"input_ids": pad(ids, pad_id),
             "attention_mask": pad([[1] * len(s) for s in ids], 0),
             "labels": pad([e["labels"] for e in examples], -100)}
    if left:
        batch["logits_to_keep"] = torch.tensor(1 + max(sum(1 for x in e["labels"] if x != -100) for e in examples))
    # tokens processed: non-pad inputs, plus the decoder tokens of a seq2seq model
    n = int(batch["attention_mask"].sum()) + (int((batch["labels"] != -100).sum()) if seq2seq else 0)
    batch["n_tokens"] = torch.tensor(n)
    return batch


def loss_of(model, batch: dict) -> torch.Tensor:
    """The mean next-token loss over the label tokens; with `logits_to_keep` in the batch (see collate), computed
    from the trailing positions' logits only."""
    keep = batch.pop("logits_to_keep", None)
    if keep is None:
        return model(**batch).loss
    keep = int(keep)
    labels = batch.pop("labels")
    logits = model(**batch, logits_to_keep=keep).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels[:, 1 - keep:].flatten(),
                                             ignore_index=-100)


def supports_logits_to_keep(model) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


class _Batches(list):
    """A list of index batches usable as a DataLoader batch_sampler (accelerate shards it across processes)."""
    def __init__(self, items, batch_size: int):
        super().__init__(items)
        self.batch_size = batch_size
        self.drop_last = False


# ------------------------------------------------------------------------------------------------------- hashing

def data_hash(rows: list[dict]) -> str:
    """sha256 of the rows' (question, thought, rationale), in order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([row["question"], row["thought"], row["rationale"]], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def _run_hash(student: str, config: TrainConfig, data: str) -> str:
    blob = json.dumps({"student": student, "config": dataclasses.asdict(config), "data": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_mixed_precision(value: str) -> str:
    if value != "auto":
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "no"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no"


# ------------------------------------------------------------------------------------------------------ training

def _read_done(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / DONE).read_text())
    except (OSError, ValueError):
        return None


def train(student: str, rows: list[dict], out_dir: Path, config: TrainConfig = TrainConfig(), method: str = "",
          progress: bool = True, stop_after_steps: int | None = None) -> TrainResult:
    """Fine-tune `student` on `rows` into out_dir/final (resuming out_dir/checkpoint; skipped if already done)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    dhash = data_hash(rows)
    run_hash = _run_hash(student, config, dhash)
    done = _read_done(out_dir)
    if done and done.get("run_hash") == run_hash and (out_dir / FINAL).is_dir():
        return TrainResult(path=out_dir / FINAL, losses=done["losses"], steps=done["steps"], skipped=True,
                           train_tokens=done["train_tokens"], seconds=done["seconds"])
    if not rows:
        raise ValueError("no training rows")

    # A fresh AcceleratorState per call: it is a process-wide singleton that refuses a changed mixed precision.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(config.mixed_precision),
                              gradient_accumulation_steps=config.grad_accum, cpu=not torch.cuda.is_available())
    ds_plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if ds_plugin is not None:  # DeepSpeed wants the micro-batch size when no dataloader is prepared with the model
        ds_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch_size
    main = accelerator.is_main_process
    ckpt_dir = out_dir / CHECKPOINT

    # Restart from scratch when the checkpoint belongs to other data/config; a finished run's leftovers go too.
    state = None
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / DONE).unlink(missing_ok=True)
        try:
            state = json.loads((ckpt_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = None
        if state is None or state.get("run_hash") != run_hash:
            state = None
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    if not main:
        try:
            state = json.loads((ckpt_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = None

    set_seed(config.seed)
    model, tokenizer = models.load(student)
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    model.train()
    examples = build_examples(rows, tokenizer, seq2seq, config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trim = not seq2seq and supports_logits_to_keep(model)

    def loader(epoch: int):
        dl = torch.utils.data.DataLoader(
            examples, batch_sampler=_Batches(batches(examples, config.batch_size, config.seed, epoch,
                                                     config.batch_tokens), config.batch_size),
            collate_fn=lambda b: collate(b, pad_id, seq2seq, trim),
            generator=torch.Generator().manual_seed(config.seed))  # keep the global RNG untouched
        return accelerator.prepare(dl)

    micro_per_epoch = len(loader(0))  # micro-batches per process per epoch
    steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accum)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    n_epochs = math.ceil(total_steps / steps_per_epoch)
    accelerator._dataloaders.clear()

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n.lower()]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n.lower())]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    # accelerate steps a prepared scheduler once per process per optimizer step: size it in those units
    sched_total = total_steps * accelerator.num_processes
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_then_linear(math.ceil(config.warmup_ratio * sched_total), sched_total))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    step, start_epoch, position, losses, train_tokens, seconds_before = 0, 0, 0, [], 0, 0.0
    if state is not None:
        accelerator.load_state(str(ckpt_dir))
        step, start_epoch, position = state["step"], state["epoch"], state["position"]
        losses, train_tokens, seconds_before = state["losses"], state["train_tokens"], state["seconds"]
        if position >= micro_per_epoch:
            start_epoch, position = start_epoch + 1, 0

    def save_checkpoint(epoch: int, pos: int, seconds: float) -> None:
        tmp = out_dir / f".{CHECKPOINT}.tmp"
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if main:
            records.write_json(tmp / STATE_FILE, {
                "step": step, "epoch": epoch, "position": pos, "losses": losses, "train_tokens": train_tokens,
                "seconds": seconds, "run_hash": run_hash, "data_hash": dhash, "student": student,
                "config": dataclasses.asdict(config)})
            old = out_dir / f".{CHECKPOINT}.old"
            shutil.rmtree(old, ignore_errors=True)
            if ckpt_dir.exists():
                ckpt_dir.rename(old)
            tmp.rename(ckpt_dir)
            shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    bar = tqdm(total=total_steps, initial=step, disable=not (progress and main), desc=f"train {student}",
               unit="step", dynamic_ncols=True)
    t_start = time.perf_counter()
    stopped = False
    group_loss, group_tokens, t_step = [], 0, time.perf_counter()
    for epoch in range(start_epoch, n_epochs):
        if step >= total_steps or stopped:
            break
        dl = loader(epoch)
        skip = position if epoch == start_epoch else 0
        it = accelerator.skip_first_batches(dl, skip) if skip else dl
        pos = skip
        for batch in it:
            n_tokens = batch.pop("n_tokens")
            with accelerator.accumulate(model), accelerator.autocast():
                loss = loss_of(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                lr = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            pos += 1
            group_loss.append(loss.detach().float())
            group_tokens += int(n_tokens)
            if not accelerator.sync_gradients:
                continue
            step += 1
            step_loss = accelerator.reduce(torch.stack(group_loss).mean().to(accelerator.device), "mean").item()
            tokens = int(accelerator.reduce(torch.tensor(group_tokens, device=accelerator.device), "sum").item())
            now = time.perf_counter()
            tok_s = tokens / max(now - t_step, 1e-9)
            train_tokens += tokens
            losses.append({"step": step, "epoch": round(epoch + pos / micro_per_epoch, 4), "loss": step_loss,
                           "tokens": tokens, "tokens_per_s": round(tok_s, 1), "lr": lr})
            group_loss, group_tokens = [], 0
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
            last = step >= total_steps
            if stop_after_steps is not None and step >= stop_after_steps and not last:
                save_checkpoint(epoch, pos, seconds_before + time.perf_counter() - t_start)
                stopped = True
                break
            if config.checkpoint_every and step % config.checkpoint_every == 0 and not last:
                save_checkpoint(epoch, pos, seconds_before + time.perf_counter() - t_start)
            t_step = time.perf_counter()
            if last:
                break
    bar.close()
    seconds = seconds_before + time.perf_counter() - t_start
    accelerator._dataloaders.clear()
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if stopped:
        return TrainResult(path=ckpt_dir, losses=losses, steps=step, skipped=False, train_tokens=train_tokens,
                           seconds=seconds, model=unwrapped.eval())

    final = out_dir / FINAL
    tmp = out_dir / f".{FINAL}.tmp"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)
    unwrapped.save_pretrained(tmp, is_main_process=main, save_function=accelerator.save, state_dict=state_dict)
    if main:
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        records.write_json(out_dir / DONE, {
            "student": student, "method": method, "config": dataclasses.asdict(config), "data_hash": dhash,
            "run_hash": run_hash, "mixed_precision": accelerator.mixed_precision, "rows": len(rows),
            "steps": step, "losses": losses, "train_tokens": train_tokens, "seconds": round(seconds, 2)})
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    return TrainResult(path=final, losses=losses, steps=step, skipped=False, train_tokens=train_tokens,
                       seconds=seconds, model=unwrapped.eval())
