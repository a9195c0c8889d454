"""The training settings, declared and documented once: `eotd.train.train` takes a TrainConfig, and a params file
sets the same keys at its top level (`eotd.params.Params` inherits these fields)."""
from __future__ import annotations

from dataclasses import dataclass

MIXED_PRECISION = ("auto", "bf16", "fp16", "no")
# key -> (lowest allowed, highest allowed), None = unbounded; eotd.params checks a params file against them
TRAIN_RANGES = {"epochs": (1e-9, None), "lr": (1e-12, 1.0), "batch_size": (1, None), "batch_tokens": (1, None),
                "grad_accum": (1, None), "max_source_len": (1, None), "max_target_len": (1, None),
                "warmup_ratio": (0, 1), "weight_decay": (0, None), "checkpoint_every": (0, None),
                "checkpoint_minutes": (1e-6, None), "max_grad_norm": (0, None), "lora_rank": (0, None),
                "lora_alpha": (1e-9, None)}


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0  # passes over the training data (a fraction stops part-way through the last)
    lr: float = 5e-5  # AdamW's peak learning rate: a linear warmup, then a linear decay
    batch_size: int = 8  # examples per micro-batch when batch_tokens is None
    batch_tokens: int | None = None  # token budget per micro-batch: as many examples as fit, counted padded
    grad_accum: int = 1  # micro-batches per optimizer step
    max_source_len: int = 256  # prompt tokens kept
    max_target_len: int = 256  # rationale tokens kept (a longer rationale is cut and loses its end token)
    seed: int = 0  # the data order (in a params file, also the seed of every other seeded choice of the run)
    warmup_ratio: float = 0.03  # share of the optimizer steps spent warming up
    weight_decay: float = 0.0
    checkpoint_every: int = 50  # optimizer steps between checkpoints (0 = by time only, or off)
    checkpoint_minutes: float | None = None  # also checkpoint when this much wall time passed since the last one
    mixed_precision: str = "auto"  # "auto" = bf16 autocast where the hardware has it (eotd.machine), else "no";
    # or "bf16" / "fp16" / "no" (MIXED_PRECISION). The weights stay fp32 either way: pure bf16 weights lose most AdamW
    # updates
    max_grad_norm: float | None = 1.0  # gradient clipping; None or 0 = off
    # training curves (loss, lr, tokens/s per step) through accelerate's trackers: "tensorboard" writes them next to
    # the student in the cache (`make tensorboard`), "none" turns them off; "wandb" etc. pass through to accelerate.
    # Not in the run hash: it does not change the trained model
    log_with: str = "tensorboard"
    # PEFT LoRA instead of a full fine-tune: adapters of this rank on every linear layer, merged into the saved student
    lora_rank: int = 0  # 0 = full fine-tune
    lora_alpha: float = 32.0  # the update is scaled by lora_alpha / lora_rank
