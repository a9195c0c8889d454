"""eotd.train on the tiny random-weight students: examples, batching, learning, saving, resuming, skipping."""
import json
import random
import resource

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

from eotd import models, protocol
from eotd.train import TrainConfig, batches, build_examples, collate, data_hash, loss_of, train, warmup_then_linear


def make_rows(n: int, offset: int = 0) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        a, b = i + 2, 2 * i + 3
        rows.append({"question": f"Tom has {a} apples and buys {b} more. How many apples?",
                     "thought": ("cot", "pot", "eot")[i % 3],
                     "rationale": f"He has {a} + {b} = {a + b}. The answer is {a + b}."})
    return rows


ROWS = make_rows(8)
FAST = dict(lr=3e-3, batch_size=4, warmup_ratio=0.1)


@pytest.fixture(scope="module")
def llama():
    return models.load("tiny-llama")


@pytest.fixture(scope="module")
def t5():
    return models.load("tiny-t5")


# ------------------------------------------------------------------------------------------------ build_examples

def test_causal_labels_mask_exactly_the_prompt(llama):
    _, tok = llama
    examples = build_examples(ROWS, tok, seq2seq=False, config=TrainConfig())
    for row, ex in zip(ROWS, examples):
        prompt = tok(protocol.student_input(row["question"], row["thought"]))["input_ids"]
        assert len(ex["input_ids"]) == len(ex["labels"])
        assert ex["input_ids"][:len(prompt)] == prompt
        assert ex["labels"][:len(prompt)] == [-100] * len(prompt)
        target = ex["labels"][len(prompt):]
        assert -100 not in target and target == ex["input_ids"][len(prompt):]
        assert target[-1] == tok.eos_token_id
        assert tok.decode(target) == row["rationale"] + tok.eos_token


def test_seq2seq_examples(t5):
    _, tok = t5
    examples = build_examples(ROWS, tok, seq2seq=True, config=TrainConfig())
    for row, ex in zip(ROWS, examples):
        assert tok.decode(ex["input_ids"]) == protocol.student_input(row["question"], row["thought"])
        assert tok.decode(ex["labels"]) == row["rationale"] + tok.eos_token
    batch = collate(examples[:3], tok.pad_token_id, seq2seq=True)
    width_in = max(len(e["input_ids"]) for e in examples[:3])
    width_out = max(len(e["labels"]) for e in examples[:3])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, width_in)
    assert batch["labels"].shape == (3, width_out)
    assert int(batch["n_tokens"]) == sum(len(e["input_ids"]) + len(e["labels"]) for e in examples[:3])


@pytest.mark.parametrize("seq2seq", [False, True])
def test_truncation(llama, t5, seq2seq):
    tok = (t5 if seq2seq else llama)[1]
    config = TrainConfig(max_source_len=10, max_target_len=7)
    long = [{"question": "word " * 200, "thought": "cot", "rationale": "step " * 300}]
    ex = build_examples(long, tok, seq2seq, config)[0]
    if seq2seq:
        assert len(ex["input_ids"]) == 10 and len(ex["labels"]) == 7
    else:
        assert len(ex["input_ids"]) == len(ex["labels"]) == 17
        assert ex["labels"][:10] == [-100] * 10 and -100 not in ex["labels"][10:]
    short = build_examples(ROWS[:1], tok, seq2seq, TrainConfig())[0]
    assert short["labels"][-1] == tok.eos_token_id  # untruncated targets keep their eos


def test_causal_collate_pads_right_with_masked_labels(llama):
    _, tok = llama
    examples = build_examples(make_rows(3), tok, seq2seq=False, config=TrainConfig())
    examples[1] = {k: v[:-4] for k, v in examples[1].items()}
    batch = collate(examples, tok.pad_token_id, seq2seq=False)
    width = max(len(e["input_ids"]) for e in examples)
    assert batch["input_ids"].shape == (3, width)  # dynamic padding: the longest in the batch, not 256
    row = batch["labels"][1]
    assert (row[len(examples[1]["labels"]):] == -100).all()
    assert batch["attention_mask"][1].sum() == len(examples[1]["input_ids"])


def test_trimmed_logits_give_the_same_loss_and_gradients(llama):
    """Left padding + logits on the rationale positions only == the model's own loss on right-padded rows."""
    model, tok = llama
    model.train()
    examples = build_examples(make_rows(5), tok, seq2seq=False, config=TrainConfig())
    full, trimmed = collate(examples, tok.pad_token_id, False), collate(examples, tok.pad_token_id, False, True)
    assert "logits_to_keep" not in full and int(trimmed["logits_to_keep"]) < trimmed["input_ids"].shape[1]
    assert (trimmed["attention_mask"][:, -1] == 1).all()  # every row ends at the last position
    grads = []
    for batch in (full, trimmed):
        batch = {k: v for k, v in batch.items() if k != "n_tokens"}
        model.zero_grad()
        loss = loss_of(model, batch)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    assert max((a - b).abs().max().item() for a, b in zip(grads[0][1], grads[1][1])) < 1e-5
    model.eval()


# ------------------------------------------------------------------------------------------------------ batches

def fake_examples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.choice([rng.randint(20, 60), rng.randint(150, 400)])
        out.append({"input_ids": [1] * length, "labels": [1] * length})
    return out


def padding_waste(examples, groups) -> float:
    padded = sum(len(g) * max(len(examples[i]["input_ids"]) for i in g) for g in groups)
    real = sum(len(examples[i]["input_ids"]) for g in groups for i in g)
    return 1 - real / padded


def test_batches_deterministic_and_complete():
    examples = fake_examples(1000)
    first = batches(examples, 8, seed=3, epoch=0)
    assert first == batches(examples, 8, seed=3, epoch=0)
    assert first != batches(examples, 8, seed=3, epoch=1)
    assert first != batches(examples, 8, seed=4, epoch=0)
    for epoch in range(3):
        groups = batches(examples, 8, seed=3, epoch=epoch)
        flat = [i for g in groups for i in g]
        assert sorted(flat) == list(range(1000))
        assert all(1 <= len(g) <= 8 for g in groups)
    assert sum(len(g) < 8 for g in first) <= 3  # only mega-batch tails can be short


def test_token_budget_batches():
    examples = fake_examples(1000)
    groups = batches(examples, 8, seed=3, epoch=0, batch_tokens=2048)
    assert sorted(i for g in groups for i in g) == list(range(1000))
    widths = [len(g) * max(len(examples[i]["input_ids"]) for i in g) for g in groups]
    assert max(widths) <= 2048 or any(len(g) == 1 for g in groups)
    sizes = {len(g) for g in groups}
    assert max(sizes) > 8 * 3 and min(sizes) < 8  # short examples travel in big batches, long ones in small
    assert groups == batches(examples, 8, seed=3, epoch=0, batch_tokens=2048)


def test_schedule_starts_and_ends_above_zero():
    factor = warmup_then_linear(3, 10)
    values = [factor(s) for s in range(10)]
    assert values[0] > 0 and values[-1] > 0  # the first and the last step both learn
    assert values[2] == 1 and values == sorted(values[:3]) + sorted(values[3:], reverse=True)


def test_batches_pad_much_less_than_random():
    examples = fake_examples(1000)
    rng = random.Random(0)
    order = list(range(1000))
    rng.shuffle(order)
    random_groups = [order[i:i + 8] for i in range(0, 1000, 8)]
    grouped = padding_waste(examples, batches(examples, 8, seed=0, epoch=0))
    baseline = padding_waste(examples, random_groups)
    assert baseline > 0.3
    assert grouped < baseline / 5


# ----------------------------------------------------------------------------------------------------- training

LLAMA_CONFIG = TrainConfig(epochs=15, checkpoint_every=10, **FAST)  # 2 batches per epoch -> 30 steps
T5_CONFIG = TrainConfig(epochs=15, checkpoint_every=10, mixed_precision="no", **FAST)


@pytest.fixture(scope="module")
def trained_models():
    """The model each module-scoped run trained, by its folder (filled by train_keeping_model)."""
    return {}


def train_keeping_model(kept: dict, student: str, out, config: TrainConfig, method: str):
    """train(), with the model it trained kept in `kept[out]`: train() returns none, so it is caught as models.load
    hands it over (LoRA merges its adapters into that same model)."""
    load = models.load

    def keep(*args, **kwargs):
        kept[out] = load(*args, **kwargs)
        return kept[out]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "load", keep)
        result = train(student, ROWS, out, config, method=method, progress=False)
    kept[out] = kept[out][0].eval()
    return out, result


@pytest.fixture(scope="module")
def llama_run(tmp_path_factory, trained_models):
    return train_keeping_model(trained_models, "tiny-llama", tmp_path_factory.mktemp("llama"), LLAMA_CONFIG, "ETD")


@pytest.fixture(scope="module")
def t5_run(tmp_path_factory, trained_models):
    return train_keeping_model(trained_models, "tiny-t5", tmp_path_factory.mktemp("t5"), T5_CONFIG, "CoTD")


def mean_loss(losses):
    return sum(item["loss"] for item in losses) / len(losses)


@pytest.mark.parametrize("which", ["llama_run", "t5_run"])
def test_training_lowers_the_loss(request, which):
    out, result = request.getfixturevalue(which)
    assert not result.skipped and result.steps == 30 and len(result.losses) == 30
    assert [item["step"] for item in result.losses] == list(range(1, 31))
    assert set(result.losses[0]) == {"step", "epoch", "loss", "tokens", "tokens_per_s", "lr"}
    first, last = mean_loss(result.losses[:3]), mean_loss(result.losses[-3:])
    assert last < 0.5 * first, (first, last)
    assert result.train_tokens == sum(x["tokens"] for x in result.losses) > 0 and result.seconds > 0
    assert result.path == out / "final" and not (out / "checkpoint").exists()
    done = json.loads((out / "done.json").read_text())
    assert done["data_hash"] == data_hash(ROWS) and done["losses"] == result.losses
    assert done["method"] in ("ETD", "CoTD") and done["student"] in ("tiny-llama", "tiny-t5")


def test_lr_schedule_warms_up_then_decays(llama_run):
    lrs = [item["lr"] for item in llama_run[1].losses]
    peak = lrs.index(max(lrs))
    assert 0 < peak <= 4 and max(lrs) == pytest.approx(LLAMA_CONFIG.lr)
    assert lrs[0] > 0  # no wasted first step
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


@pytest.mark.parametrize("which, auto", [("llama_run", AutoModelForCausalLM), ("t5_run", AutoModelForSeq2SeqLM)])
def test_final_folder_reloads_with_identical_weights(request, which, auto, llama, t5, trained_models):
    out, result = request.getfixturevalue(which)
    tok = (t5 if which == "t5_run" else llama)[1]
    loaded = auto.from_pretrained(result.path).eval()
    trained = trained_models[out].state_dict()
    assert loaded.state_dict().keys() == trained.keys()
    assert all(torch.equal(value, trained[name]) for name, value in loaded.state_dict().items())
    # and the trained model computes something else than the untrained one
    ids = torch.tensor([tok("Question: Tom has 3 apples.\n")["input_ids"]])
    kwargs = {"input_ids": ids}
    if which == "t5_run":
        kwargs["decoder_input_ids"] = torch.tensor([[loaded.config.decoder_start_token_id, 5, 9]])
    with torch.no_grad():
        base = (t5 if which == "t5_run" else llama)[0]
        assert not torch.allclose(base(**kwargs).logits, loaded(**kwargs).logits)


def test_resume_reproduces_the_uninterrupted_run(llama_run, tmp_path):
    _, full = llama_run
    stopped = train("tiny-llama", ROWS, tmp_path, LLAMA_CONFIG, progress=False, stop_after_steps=13)
    assert stopped.steps == 13 and not (tmp_path / "final").exists() and not (tmp_path / "done.json").exists()
    state = json.loads((tmp_path / "checkpoint" / "eotd_train_state.json").read_text())
    assert (state["step"], state["epoch"], state["position"]) == (13, 6, 1)  # mid-epoch
    resumed = train("tiny-llama", ROWS, tmp_path, LLAMA_CONFIG, progress=False)
    assert resumed.steps == full.steps == 30 and not resumed.skipped
    assert [item["step"] for item in resumed.losses] == list(range(1, 31))
    assert torch.allclose(torch.tensor([x["loss"] for x in resumed.losses]),
                          torch.tensor([x["loss"] for x in full.losses]), rtol=1e-4, atol=1e-5)
    assert [x["lr"] for x in resumed.losses] == pytest.approx([x["lr"] for x in full.losses])


def test_an_isolated_run_trains_in_another_process_like_an_in_process_one(llama_run, tmp_path):
    """isolate=True: the student trains in a spawned process, with the same losses and weights as the run in this
    process; a rerun is skipped here without starting a process."""
    out, full = llama_run
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    alone = train("tiny-llama", ROWS, tmp_path, LLAMA_CONFIG, method="ETD", progress=False, isolate=True)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime > children + 1  # a child ran: torch alone takes >1 s
    assert not alone.skipped and alone.steps == full.steps and alone.path == tmp_path / "final"
    assert [x["loss"] for x in alone.losses] == pytest.approx([x["loss"] for x in full.losses], rel=1e-4, abs=1e-5)
    weights = AutoModelForCausalLM.from_pretrained(alone.path).state_dict()
    reference = AutoModelForCausalLM.from_pretrained(full.path).state_dict()
    assert all(torch.allclose(value, reference[name], atol=1e-5) for name, value in weights.items())
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    assert train("tiny-llama", ROWS, tmp_path, LLAMA_CONFIG, method="ETD", progress=False, isolate=True).skipped
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime == children  # no process was started


def test_resume_with_dropout_and_accumulation(tmp_path):
    """T5 has dropout (RNG state must be restored) and 3 micro-batches per epoch with grad_accum 2."""
    rows = make_rows(6)
    config = TrainConfig(epochs=3, lr=1e-3, batch_size=2, grad_accum=2, checkpoint_every=100)
    full = train("tiny-t5", rows, tmp_path / "full", config, progress=False)
    assert full.steps == 6  # ceil(3 / 2) per epoch: the odd micro-batch closes the epoch's last step
    train("tiny-t5", rows, tmp_path / "cut", config, progress=False, stop_after_steps=3)
    resumed = train("tiny-t5", rows, tmp_path / "cut", config, progress=False)
    assert resumed.steps == 6
    assert torch.allclose(torch.tensor([x["loss"] for x in resumed.losses]),
                          torch.tensor([x["loss"] for x in full.losses]), rtol=1e-4, atol=1e-5)


def test_rerun_is_skipped(llama_run):
    out, full = llama_run
    stamp = (out / "final" / "model.safetensors").stat().st_mtime_ns
    again = train("tiny-llama", ROWS, out, LLAMA_CONFIG, method="ETD", progress=False)
    assert again.skipped and again.losses == full.losses and again.steps == full.steps
    assert again.path == out / "final"
    assert (out / "final" / "model.safetensors").stat().st_mtime_ns == stamp


def test_changed_data_or_config_retrains(tmp_path):
    config = TrainConfig(epochs=1, **FAST)
    first = train("tiny-llama", ROWS, tmp_path, config, progress=False)
    assert not first.skipped and first.steps == 2
    # a stale checkpoint of other data is dropped, not resumed
    other = make_rows(8, offset=100)
    train("tiny-llama", other, tmp_path, TrainConfig(epochs=3, **FAST), progress=False, stop_after_steps=1)
    assert (tmp_path / "checkpoint").exists() and not (tmp_path / "done.json").exists()
    changed = train("tiny-llama", other, tmp_path, config, progress=False)
    assert not changed.skipped and changed.steps == 2
    assert json.loads((tmp_path / "done.json").read_text())["data_hash"] == data_hash(other)
    assert not (tmp_path / "checkpoint").exists()
    retuned = train("tiny-llama", other, tmp_path, TrainConfig(epochs=1, seed=1, **FAST), progress=False)
    assert not retuned.skipped
    assert train("tiny-llama", other, tmp_path, TrainConfig(epochs=1, seed=1, **FAST), progress=False).skipped


def kill_at_micro_batch(monkeypatch, n: int):
    """Make eotd.train's n-th loss computation raise KeyboardInterrupt (a kill mid-run); returns the real loss_of."""
    import itertools

    from eotd import train as train_module

    real_loss, calls = train_module.loss_of, itertools.count(1)

    def killed(model, batch):
        if next(calls) == n:
            raise KeyboardInterrupt("killed")
        return real_loss(model, batch)

    monkeypatch.setattr(train_module, "loss_of", killed)
    return real_loss


def test_time_based_checkpoints_resume_like_step_based(llama_run, tmp_path, monkeypatch):
    """checkpoint_minutes alone (no step rule): a run killed after a time-based checkpoint resumes from it and
    ends on the uninterrupted curve. The clock is faked (each read 20 s later) and the kill is an exception."""
    import dataclasses
    import itertools
    import types

    from eotd import train as train_module

    _, full = llama_run
    config = dataclasses.replace(LLAMA_CONFIG, checkpoint_every=0, checkpoint_minutes=2.5)
    clock = itertools.count(0.0, 20.0)
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    real_loss = kill_at_micro_batch(monkeypatch, 14)
    with pytest.raises(KeyboardInterrupt):
        train("tiny-llama", ROWS, tmp_path, config, progress=False)
    state = json.loads((tmp_path / "checkpoint" / "eotd_train_state.json").read_text())
    assert 0 < state["step"] < 14 and not (tmp_path / "done.json").exists()
    monkeypatch.setattr(train_module, "loss_of", real_loss)
    resumed = train("tiny-llama", ROWS, tmp_path, config, progress=False)
    assert json.loads((tmp_path / "done.json").read_text())["resumed_from_step"] == state["step"]
    assert [x["step"] for x in resumed.losses] == list(range(1, 31))
    assert torch.allclose(torch.tensor([x["loss"] for x in resumed.losses]),
                          torch.tensor([x["loss"] for x in full.losses]), rtol=1e-4, atol=1e-5)


def test_checkpoints_by_time_are_spaced_by_wall_time(tmp_path, monkeypatch):
    import dataclasses
    import types

    from eotd import train as train_module

    saved = []
    monkeypatch.setattr(train_module, "_save_checkpoint", lambda acc, out, pos, meta: saved.append(pos.step))
    ticks = iter(range(0, 10_000, 30))  # every clock read 30 s later
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    train("tiny-llama", ROWS, tmp_path, dataclasses.replace(LLAMA_CONFIG, checkpoint_every=0, checkpoint_minutes=3.0),
          progress=False)
    gaps = [b - a for a, b in zip([0] + saved, saved)]
    assert saved and len(set(gaps)) == 1 and 1 < gaps[0] < 30  # evenly spaced by time, not by the step count


def test_training_curves_go_to_tensorboard(tmp_path, monkeypatch):
    """Each step's loss, lr and tokens/s land in out_dir/tensorboard with their step: a process killed after its
    checkpoint and resumed leaves one curve equal to done.json's losses; log_with "none" writes no event file."""
    import dataclasses

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from eotd import train as train_module

    def scalars(out, tag):
        runs = {p.parent for p in (out / "tensorboard").rglob("events.out.tfevents.*")}
        assert len(runs) == 1
        events = EventAccumulator(str(runs.pop()))
        events.Reload()
        return [(e.step, e.value) for e in events.Scalars(tag)]

    out = tmp_path / "curves"
    config = TrainConfig(epochs=4, checkpoint_every=3, **FAST)  # 2 batches per epoch -> 8 steps
    real_loss = kill_at_micro_batch(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        train("tiny-llama", ROWS, out, config, progress=False)
    assert [step for step, _ in scalars(out, "train/loss")] == [1, 2, 3, 4, 5]  # steps 4-5 are past the checkpoint
    monkeypatch.setattr(train_module, "loss_of", real_loss)
    train("tiny-llama", ROWS, out, config, progress=False)
    done = json.loads((out / "done.json").read_text())
    assert done["resumed_from_step"] == 3
    loss = scalars(out, "train/loss")
    assert [step for step, _ in loss] == list(range(1, 9))
    assert [value for _, value in loss] == pytest.approx([x["loss"] for x in done["losses"]], rel=1e-6)
    assert [value for _, value in scalars(out, "train/lr")] == pytest.approx([x["lr"] for x in done["losses"]],
                                                                            rel=1e-6)
    assert [value for _, value in scalars(out, "train/tokens_per_s")] == pytest.approx(
        [x["tokens_per_s"] for x in done["losses"]], abs=0.06)

    off = tmp_path / "off"
    train("tiny-llama", ROWS, off, dataclasses.replace(config, log_with="none"), progress=False)
    assert (off / "done.json").exists() and not (off / "tensorboard").exists()


# ---------------------------------------------------------------------------------------------------------- LoRA

LORA_CONFIG = TrainConfig(epochs=15, checkpoint_every=10, lora_rank=4, lora_alpha=16, **FAST)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, trained_models):
    return train_keeping_model(trained_models, "tiny-llama", tmp_path_factory.mktemp("lora"), LORA_CONFIG, "PoTD")


def test_lora_learns_and_saves_a_plain_model_changed_only_in_its_linear_layers(lora_run, llama, trained_models):
    out, result = lora_run
    assert result.steps == 30 and mean_loss(result.losses[-3:]) < 0.7 * mean_loss(result.losses[:3])
    assert not list(result.path.glob("adapter*"))  # the adapters are merged: final/ is a plain transformers folder
    loaded = AutoModelForCausalLM.from_pretrained(result.path).eval()
    trained, untrained = dict(loaded.named_parameters()), dict(llama[0].named_parameters())
    assert set(trained) == set(untrained)
    changed = {name for name in trained if not torch.equal(trained[name], untrained[name])}
    assert changed and all(name.endswith("_proj.weight") for name in changed), changed
    assert {"model.embed_tokens.weight", "model.norm.weight"}.isdisjoint(changed)
    ids = torch.tensor([llama[1]("Question: Tom has 3 apples.\n")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, trained_models[out](input_ids=ids).logits, atol=1e-5)


def test_lora_resume_reproduces_the_uninterrupted_run(lora_run, tmp_path):
    _, full = lora_run
    train("tiny-llama", ROWS, tmp_path, LORA_CONFIG, progress=False, stop_after_steps=13)
    resumed = train("tiny-llama", ROWS, tmp_path, LORA_CONFIG, progress=False)
    assert resumed.steps == 30 and not resumed.skipped
    assert torch.allclose(torch.tensor([x["loss"] for x in resumed.losses]),
                          torch.tensor([x["loss"] for x in full.losses]), rtol=1e-4, atol=1e-5)


def test_lora_settings_count_only_when_lora_is_on(tmp_path):
    """A full fine-tune keeps its run (and its cache) whatever lora_alpha says; turning LoRA on retrains."""
    import dataclasses

    config = TrainConfig(epochs=1, **FAST)
    assert not train("tiny-llama", ROWS, tmp_path, config, progress=False).skipped
    assert train("tiny-llama", ROWS, tmp_path, dataclasses.replace(config, lora_alpha=64.0), progress=False).skipped
    assert not train("tiny-llama", ROWS, tmp_path, dataclasses.replace(config, lora_rank=2), progress=False).skipped
