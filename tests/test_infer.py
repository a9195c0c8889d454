"""Batched greedy generation (tiny random-weight model): batching by a token budget changes nothing in the outputs."""
import pytest

from eotd import infer, models, protocol
from eotd.data import load_gsm_symbolic


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """The tiny model after a few steps on GSM-Symbolic solutions, so that greedy outputs are text, not one token."""
    from eotd.train import TrainConfig, train

    rows = [{"question": p.question, "thought": "cot", "rationale": p.solution} for p in load_gsm_symbolic(16, seed=0)]
    out = tmp_path_factory.mktemp("tiny")
    result = train("tiny-llama", rows, out, TrainConfig(epochs=6, lr=3e-3, batch_size=8, checkpoint_every=0),
                   progress=False)
    return models.load(str(result.path))


def prompts(n=10):
    return [protocol.student_input(p.question, ("cot", "pot", "eot")[i % 3])
            for i, p in enumerate(load_gsm_symbolic(n, seed=4))]


def test_batch_plan_respects_budget_and_size():
    lengths = [30, 200, 50, 50, 120, 10, 80, 75]
    plan = infer.batch_plan(lengths, max_new_tokens=40, batch_tokens=400, max_batch=3)
    assert sorted(i for batch in plan for i in batch) == list(range(len(lengths)))
    for batch in plan:
        assert len(batch) <= 3
        widest = max(lengths[i] for i in batch) + 40
        assert len(batch) == 1 or len(batch) * widest <= 400
    assert plan[0] == [1]  # the longest prompt first, alone: two of them would not fit
    assert [lengths[b[0]] for b in plan] == sorted((lengths[b[0]] for b in plan), reverse=True)


def test_token_budget_batches_equal_one_at_a_time(llama):
    model, tok = llama
    texts = prompts()
    one_by_one = infer.generate(model, tok, texts, max_new_tokens=12, batch_size=1)
    budgeted = infer.generate(model, tok, texts, max_new_tokens=12, batch_size=8, batch_tokens=600)
    assert budgeted == one_by_one
    assert len(set(one_by_one)) > 1  # the prompts really led to different continuations


def test_continuous_batching_refills_and_equals_one_at_a_time(llama):
    """Three places for ten prompts: rows that end are replaced by waiting prompts (joined to the running batch,
    left-padded to its width) and every output still equals the one-at-a-time one."""
    model, tok = llama
    texts = prompts()
    # both in fp32: greedy_continuous runs in the caller's precision, and generate would autocast to bf16 where the
    # CPU has it, where a tiny model's near-tied logits then differ
    one_by_one = infer.generate(model, tok, texts, max_new_tokens=12, batch_size=1, bf16=False)
    ended: list[int] = []
    new = infer.greedy_continuous(model, tok(texts)["input_ids"], 12, infer.stop_ids(model, tok), tok.pad_token_id,
                                  max_rows=3, batch_tokens=10 ** 6, finished=ended.append)
    assert [text.strip() for text in tok.batch_decode(new, skip_special_tokens=True)] == one_by_one
    assert sum(ended) == len(texts) and len(ended) > 1


def test_static_batches_equal_continuous(llama):
    """generate_static (transformers' generate on batch_plan's left-padded batches, the path of seq2seq models)
    gives the continuous batching's outputs."""
    model, tok = llama
    texts = prompts()
    ended: list[int] = []
    static = infer.generate_static(model, tok, texts, max_new_tokens=12, batch_size=4, finished=ended.append)
    assert static == infer.generate(model, tok, texts, max_new_tokens=12, batch_size=1)
    assert ended == [4, 4, 2]


def test_batches_end_at_the_stop_token(llama):
    model, tok = llama
    assert tok.eos_token_id in infer.stop_ids(model, tok)
    short = infer.generate(model, tok, prompts(3), max_new_tokens=4)
    longer = infer.generate(model, tok, prompts(3), max_new_tokens=12)
    assert all(b.startswith(a) for a, b in zip(short, longer))  # greedy: a longer budget only extends


def test_inference_load_picks_device_and_dtype():
    model, _ = models.load_for_inference("tiny-llama")
    assert model.device.type == models.inference_device()
    assert model.dtype == models.inference_dtype()
    assert not model.training
