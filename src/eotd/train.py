"""Fine-tune a student on verified rationales with 🤗 accelerate (full fine-tune, fp32 master weights), or with PEFT
LoRA adapters on every linear layer (`lora_rank` > 0), merged into the saved weights so final/ is a plain model.

Input: `protocol.student_input(question, thought)` (`Question: <q>\\n<trigger>\\n`); target: the rationale + EOS.
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
a rerun with the same student, config and data is skipped. `train` returns the losses and timings, never the
model: the run's model, optimizer and data are freed before it returns (load the trained model from out_dir/final).

Each optimizer step's loss, learning rate and tokens/s also go to accelerate's trackers (`TrainConfig.log_with`):
TensorBoard event files in `out_dir/tensorboard/eotd` by default (`make tensorboard` shows every student's).

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

from eotd import console, machine, models, records
from eotd.machine import bf16_supported
from eotd.protocol import CHECKPOINT_DIR, DONE_FILE, FINAL_DIR, student_input
from eotd.train_config import TrainConfig

STATE_FILE = "eotd_train_state.json"
TENSORBOARD_DIR = "tensorboard"  # out_dir/tensorboard/eotd: the run's TensorBoard event files
UNHASHED = ("log_with",)  # TrainConfig fields that do not change the trained model, so not the run hash either
LORA_FIELDS = ("lora_rank", "lora_alpha")  # hashed only when LoRA is on: full fine-tunes keep their earlier hashes
MEGA_BATCH = 50  # batches per length-sorting window


@dataclass
class TrainResult:
    path: Path  # the final transformers folder
    losses: list[dict]  # one per optimizer step: step, epoch, loss, tokens, tokens_per_s, lr
    steps: int
    skipped: bool
    train_tokens: int
    seconds: float


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
        prompt = _tokens(tokenizer, student_input(row["question"], row["thought"]), special=True)
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
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in UNHASHED and (config.lora_rank or k not in LORA_FIELDS)}
    blob = json.dumps({"student": student, "config": settings, "data": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def resolve_mixed_precision(value: str) -> str:
    """"auto" -> "bf16" where the hardware computes in bf16 (eotd.machine), else "no"; other values unchanged."""
    if value != "auto":
        return value
    return "bf16" if bf16_supported() else "no"


# ------------------------------------------------------------------------------------------------------ training

def _accelerator(config: TrainConfig, logging_dir: Path | None = None):
    """An Accelerator for one training run. The private accelerate calls the loop needs (accelerate 1.15) live here
    and nowhere else: a fresh process-wide state per run, and one prepared dataloader at a time. Its trackers
    (`config.log_with`) write under `logging_dir`; none without one."""
    import accelerate
    from accelerate.state import AcceleratorState
    from accelerate.utils import ProjectConfiguration

    class EpochAccelerator(accelerate.Accelerator):
        def prepare_epoch(self, dataloader):
            """Prepare this epoch's dataloader in place of the last one: accelerate keeps every prepared dataloader
            and save_state checkpoints each one's sampler."""
            self._dataloaders.clear()
            return self.prepare(dataloader) if dataloader is not None else None

    # AcceleratorState is a process-wide singleton that refuses a changed mixed precision: reset it per run.
    AcceleratorState._reset_state(reset_partial_state=False)
    log_with = None if config.log_with == "none" or logging_dir is None else config.log_with
    accelerator = EpochAccelerator(mixed_precision=resolve_mixed_precision(config.mixed_precision),
                                   gradient_accumulation_steps=config.grad_accum, cpu=not torch.cuda.is_available(),
                                   log_with=log_with, project_config=ProjectConfiguration(
                                       logging_dir=str(logging_dir) if logging_dir is not None else None))
    ds_plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if ds_plugin is not None:  # DeepSpeed wants the micro-batch size when no dataloader is prepared with the model
        ds_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch_size
    return accelerator


@dataclass
class _Position:
    """Where a run stands: saved with every checkpoint, restored on resume."""
    step: int = 0  # optimizer steps done
    epoch: int = 0
    position: int = 0  # micro-batches done in `epoch`
    losses: list[dict] = field(default_factory=list)
    train_tokens: int = 0
    seconds: float = 0.0  # training time before this process started


@dataclass
class _Setup:
    """The prepared model, optimizer and data of a run, and its length in steps."""
    model: object
    tokenizer: object
    optimizer: object
    scheduler: object
    loader: object  # epoch -> prepared DataLoader
    micro_per_epoch: int  # micro-batches per process per epoch
    total_steps: int
    n_epochs: int


def _finished(out_dir: Path, run_hash: str) -> TrainResult | None:
    """The result of an earlier run with the same student, config and data, if it finished."""
    try:
        done = json.loads((out_dir / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if done.get("run_hash") != run_hash or not (out_dir / FINAL_DIR).is_dir():
        return None
    return TrainResult(path=out_dir / FINAL_DIR, losses=done["losses"], steps=done["steps"], skipped=True,
                       train_tokens=done["train_tokens"], seconds=done["seconds"])


def _read_checkpoint_state(ckpt_dir: Path) -> dict | None:
    try:
        return json.loads((ckpt_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _saved_position(accelerator, out_dir: Path, run_hash: str) -> _Position | None:
    """The checkpoint's position when it belongs to this run. The main process deletes a checkpoint of other
    data or config, and a finished run's done.json, before any process reads."""
    ckpt_dir = out_dir / CHECKPOINT_DIR
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / DONE_FILE).unlink(missing_ok=True)
        state = _read_checkpoint_state(ckpt_dir)
        if state is None or state.get("run_hash") != run_hash:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    state = _read_checkpoint_state(ckpt_dir)
    if state is None:
        return None
    return _Position(*(state[k] for k in ("step", "epoch", "position", "losses", "train_tokens", "seconds")))


def _setup(accelerator, student: str, rows: list[dict], config: TrainConfig) -> _Setup:
    """Load the student, tokenise the rows and prepare model, optimizer, schedule and data loaders."""
    from accelerate.utils import set_seed

    set_seed(config.seed)
    model, tokenizer = models.load(student)
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    trim = not seq2seq and supports_logits_to_keep(model)  # of the transformers model: PEFT passes it through
    if not torch.cuda.is_available() and getattr(model.config, "_attn_implementation", None) == "sdpa":
        # on the CPU, SDPA's flash-attention backward is a fifth of a training step; plain matmul attention trains
        # ~1.2x faster (measured on the 2-core Xeon, same batches). The saved config does not record it: the trained
        # model loads with SDPA, faster for generation.
        model.set_attn_implementation("eager")
    if config.lora_rank:
        model = _with_lora(model, config, seq2seq)
    model.train()
    examples = build_examples(rows, tokenizer, seq2seq, config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def loader(epoch: int):
        dl = torch.utils.data.DataLoader(
            examples, batch_sampler=_Batches(batches(examples, config.batch_size, config.seed, epoch,
                                                     config.batch_tokens), config.batch_size),
            collate_fn=lambda b: collate(b, pad_id, seq2seq, trim),
            generator=torch.Generator().manual_seed(config.seed))  # keep the global RNG untouched
        return accelerator.prepare_epoch(dl)

    micro_per_epoch = len(loader(0))
    accelerator.prepare_epoch(None)
    steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accum)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.ndim >= 2 and "norm" not in n.lower()]
    no_decay = [p for n, p in trainable if not (p.ndim >= 2 and "norm" not in n.lower())]
    # fused: one kernel over all tensors instead of a loop per tensor (on a 2-core CPU 0.11-0.12 s per step for the
    # 135M student instead of 0.45-0.66 s, a fifth of a 512-token step); torch has it for CPU, CUDA and MPS
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, fused=True)
    # accelerate steps a prepared scheduler once per process per optimizer step: size it in those units
    sched_total = total_steps * accelerator.num_processes
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_then_linear(math.ceil(config.warmup_ratio * sched_total), sched_total))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    return _Setup(model, tokenizer, optimizer, scheduler, loader, micro_per_epoch, total_steps,
                  n_epochs=math.ceil(total_steps / steps_per_epoch))


def _with_lora(model, config: TrainConfig, seq2seq: bool):
    """The model with PEFT LoRA adapters on every linear layer but the output layer; only the adapters train."""
    from peft import LoraConfig, TaskType, get_peft_model

    task = TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM
    return get_peft_model(model, LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                                            target_modules="all-linear", task_type=task))


def _save_checkpoint(accelerator, out_dir: Path, position: _Position, meta: dict) -> None:
    """Model, optimizer, scheduler and RNG states plus the position, swapped in whole (a kill mid-save keeps the
    previous checkpoint)."""
    main = accelerator.is_main_process
    tmp = out_dir / f".{CHECKPOINT_DIR}.tmp"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if main:
        records.write_json(tmp / STATE_FILE, {**dataclasses.asdict(position), **meta})
        ckpt_dir, old = out_dir / CHECKPOINT_DIR, out_dir / f".{CHECKPOINT_DIR}.old"
        shutil.rmtree(old, ignore_errors=True)
        if ckpt_dir.exists():
            ckpt_dir.rename(old)
        tmp.rename(ckpt_dir)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _optimize(accelerator, setup: _Setup, config: TrainConfig, at: _Position, checkpoint, bar,
              stop_after_steps: int | None) -> bool:
    """Run optimizer steps from `at` (updated in place) to the end, checkpointing every config.checkpoint_every
    steps; True when stopped early by stop_after_steps (after a checkpoint)."""
    model, optimizer, scheduler = setup.model, setup.optimizer, setup.scheduler
    if at.position >= setup.micro_per_epoch:
        at.epoch, at.position = at.epoch + 1, 0
    t_start = time.perf_counter()
    seconds_before = at.seconds
    group_loss, group_tokens, t_step = [], 0, time.perf_counter()
    t_checkpoint = t_step
    for epoch in range(at.epoch, setup.n_epochs):
        if at.step >= setup.total_steps:
            break
        dl = setup.loader(epoch)
        skip = at.position if epoch == at.epoch else 0
        at.epoch, at.position = epoch, skip
        for batch in (accelerator.skip_first_batches(dl, skip) if skip else dl):
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
            at.position += 1
            group_loss.append(loss.detach().float())
            group_tokens += int(n_tokens)
            if not accelerator.sync_gradients:
                continue
            at.step += 1
            step_loss = accelerator.reduce(torch.stack(group_loss).mean().to(accelerator.device), "mean").item()
            tokens = int(accelerator.reduce(torch.tensor(group_tokens, device=accelerator.device), "sum").item())
            now = time.perf_counter()
            tok_s = tokens / max(now - t_step, 1e-9)
            at.train_tokens += tokens
            at.losses.append({"step": at.step, "epoch": round(epoch + at.position / setup.micro_per_epoch, 4),
                              "loss": step_loss, "tokens": tokens, "tokens_per_s": round(tok_s, 1), "lr": lr})
            accelerator.log({"train/loss": step_loss, "train/lr": lr, "train/tokens_per_s": tok_s}, step=at.step)
            group_loss, group_tokens = [], 0
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
            at.seconds = seconds_before + time.perf_counter() - t_start
            if at.step >= setup.total_steps:
                return False
            if stop_after_steps is not None and at.step >= stop_after_steps:
                checkpoint(at)
                return True
            if _checkpoint_due(accelerator, config, at.step, time.perf_counter() - t_checkpoint):
                checkpoint(at)
                t_checkpoint = time.perf_counter()
            t_step = time.perf_counter()
    return False


def _checkpoint_due(accelerator, config: TrainConfig, step: int, seconds_since: float) -> bool:
    """Every checkpoint_every steps, or once checkpoint_minutes of wall time passed since the last checkpoint (a
    checkpoint writes weights and optimizer state, so by steps it costs more the faster the steps are). Processes
    decide together: clocks differ, and a save that only some of them enter would hang."""
    if config.checkpoint_every and step % config.checkpoint_every == 0:
        return True
    if not config.checkpoint_minutes:
        return False
    due = torch.tensor(float(seconds_since >= 60 * config.checkpoint_minutes), device=accelerator.device)
    return bool(accelerator.reduce(due, "max").item())


def _start_tracking(accelerator, out_dir: Path, step: int) -> None:
    """Start the trackers on the main process: TensorBoard writes out_dir/tensorboard/eotd. A fresh run (step 0)
    starts a new curve; a resumed one appends from `step` on and hides what a killed process logged after its last
    checkpoint (`purge_step`), so the curve matches done.json's losses."""
    if not accelerator.log_with:
        return
    if accelerator.is_main_process and step == 0:
        shutil.rmtree(out_dir / TENSORBOARD_DIR, ignore_errors=True)
    accelerator.init_trackers("eotd", init_kwargs={"tensorboard": {"purge_step": step + 1} if step else {},
                                                   "wandb": {"name": f"{out_dir.parent.name}/{out_dir.name}"}})


def _end_tracking(accelerator) -> None:
    """Close the trackers: what `accelerator.end_training()` does, less destroying the process group, which the next
    student trained in the same `accelerate launch` process still needs."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()


def _save_final(accelerator, setup: _Setup, unwrapped, out_dir: Path, done: dict) -> None:
    """out_dir/final (model + tokenizer, swapped in whole), then done.json; the checkpoint goes."""
    main = accelerator.is_main_process
    final, tmp = out_dir / FINAL_DIR, out_dir / f".{FINAL_DIR}.tmp"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    merged = hasattr(setup.model, "peft_config")  # LoRA: `unwrapped` is the base model with the adapters merged in
    unwrapped.save_pretrained(tmp, is_main_process=main, save_function=accelerator.save,
                              state_dict=None if merged else accelerator.get_state_dict(setup.model))
    if main:
        setup.tokenizer.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        records.write_json(out_dir / DONE_FILE, done)
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    accelerator.wait_for_everyone()


def train(student: str, rows: list[dict], out_dir: Path, config: TrainConfig = TrainConfig(), method: str = "",
          progress: bool = True, stop_after_steps: int | None = None, isolate: bool = False) -> TrainResult:
    """Fine-tune `student` on `rows` into out_dir/final (resuming out_dir/checkpoint; skipped if already done).
    With `isolate`, the run happens in a process of its own, so that nothing it allocated (nor the heap's fragments)
    is left in this one: memory stays flat across any number of students."""
    from accelerate.utils import release_memory

    out_dir = Path(out_dir)
    dhash = data_hash(rows)
    run_hash = _run_hash(student, config, dhash)
    if (earlier := _finished(out_dir, run_hash)) is not None:
        return earlier
    if not rows:
        raise ValueError("no training rows")
    if isolate:
        return _in_own_process(student, rows, out_dir, config, method, progress, stop_after_steps)
    meta = {"run_hash": run_hash, "data_hash": dhash, "student": student, "config": dataclasses.asdict(config)}
    result = _run(student, rows, out_dir, config, meta, method, progress, stop_after_steps)
    # the run's model and Accelerator hold reference cycles: collect them (and empty the GPU cache) now, before the
    # next run loads its model, and hand their pages back so that each run starts from the same resident memory
    release_memory()
    machine.trim_heap()
    return result


def _in_own_process(*args) -> TrainResult:
    """`train(*args)` in a freshly spawned process (about 5 s to import torch and transformers, against minutes of
    training), which ends with the parent."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker) as worker:
        return worker.submit(train, *args).result()


def _start_worker() -> None:
    """A training worker ends with its parent and, like the notebook that started it, keeps the libraries quiet."""
    machine.die_with_parent()
    console.quiet_libraries()


def _run(student: str, rows: list[dict], out_dir: Path, config: TrainConfig, meta: dict, method: str,
         progress: bool, stop_after_steps: int | None) -> TrainResult:
    """One training run: setup, resume, optimize, save; everything it allocates is garbage once it returns."""
    accelerator = _accelerator(config, out_dir / TENSORBOARD_DIR)
    saved = _saved_position(accelerator, out_dir, meta["run_hash"])
    setup = _setup(accelerator, student, rows, config)
    at = _Position()
    if saved is not None:
        accelerator.load_state(str(out_dir / CHECKPOINT_DIR))
        at = saved
    resumed_from = at.step
    bar = console.bar(total=setup.total_steps, initial=at.step, disable=not (progress and accelerator.is_main_process),
                      desc=f"train {method or student}", unit="step")
    _start_tracking(accelerator, out_dir, at.step)
    try:
        stopped = _optimize(accelerator, setup, config, at,
                            lambda pos: _save_checkpoint(accelerator, out_dir, pos, meta), bar, stop_after_steps)
    finally:
        _end_tracking(accelerator)
    bar.close()
    accelerator.prepare_epoch(None)
    if not stopped:
        model = accelerator.unwrap_model(setup.model, keep_fp32_wrapper=False)
        if config.lora_rank:
            model = model.merge_and_unload()
        _save_final(accelerator, setup, model, out_dir, {
            **meta, "method": method, "mixed_precision": accelerator.mixed_precision, "rows": len(rows),
            "resumed_from_step": resumed_from, "steps": at.step, "losses": at.losses, "train_tokens": at.train_tokens,
            "seconds": round(at.seconds, 2)})
    accelerator.free_memory()  # drops accelerate's references to the model, optimizer and data (and a DeepSpeed engine)
    return TrainResult(path=out_dir / (CHECKPOINT_DIR if stopped else FINAL_DIR), losses=at.losses, steps=at.step,
                       skipped=False, train_tokens=at.train_tokens, seconds=at.seconds)
