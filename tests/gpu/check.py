"""The GPU check (not part of `make test`): on a CUDA machine, in a few minutes and with no download, build a small
Llama from a config, train it 100 steps in bf16 through eotd.train, generate on the GPU through eotd.infer and, when
vLLM is importable, through `vllm serve`; print tokens/s for each. Run: bash tests/gpu/check.sh
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from eotd import infer, models, protocol
from eotd.data import load_gsm_symbolic
from eotd.teachers.annotation import rationale_rows
from eotd.train import TrainConfig, train


def small_model(folder: Path) -> Path:
    """~60 M parameters with the tiny student's tokenizer: big enough to load the GPU, built locally."""
    tokenizer_source = Path(models.resolve("tiny-llama"))
    config = LlamaConfig(vocab_size=512, hidden_size=768, intermediate_size=2048, num_hidden_layers=8,
                         num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    for name in tokenizer_source.iterdir():
        if name.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(name, folder / name.name)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_check(folder: Path, prompts: list[str], max_new: int) -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("vllm: not importable here, skipped")
        return
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                               "--port", str(port), "--dtype", "bfloat16", "--served-model-name", "student"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(2)
        else:
            print("vllm: the server did not come up in 180 s")
            return
        body = json.dumps({"model": "student", "prompt": prompts, "max_tokens": max_new, "temperature": 0}).encode()
        start = time.perf_counter()
        reply = json.load(urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/completions", body, {"Content-Type": "application/json"}), timeout=300))
        elapsed = time.perf_counter() - start
        tokens = reply["usage"]["completion_tokens"]
        print(f"vllm serve: {len(prompts)} prompts, {tokens} tokens in {elapsed:.1f} s = {tokens / elapsed:.0f} tok/s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check is for a GPU machine")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, bf16 {torch.cuda.is_bf16_supported()}")
    work = Path(tempfile.mkdtemp(prefix="eotd-gpu-"))
    os.environ.setdefault("EOTD_CACHE_DIR", str(work / "cache"))
    folder = small_model(work / "model")
    data = rationale_rows(load_gsm_symbolic(1200, seed=0))
    config = TrainConfig(epochs=1.0, lr=3e-4, batch_tokens=8192, checkpoint_every=0, mixed_precision="auto")
    start = time.perf_counter()
    result = train(str(folder), data, work / "student", config, progress=False)
    steps = result.losses[1:101] or result.losses
    seconds = sum(x["tokens"] / x["tokens_per_s"] for x in steps)
    print(f"train: {result.steps} steps in {time.perf_counter() - start:.1f} s, "
          f"{sum(x['tokens'] for x in steps) / seconds:.0f} tok/s after the first step, "
          f"loss {result.losses[0]['loss']:.3f} -> {result.losses[-1]['loss']:.3f}")
    model, tokenizer = models.load_for_inference(str(result.path))
    assert model.device.type == "cuda", model.device
    prompts = [protocol.student_input(p.question, "pot") for p in load_gsm_symbolic(512, seed=1)]
    start = time.perf_counter()
    outputs = infer.generate(model, tokenizer, prompts, 96, batch_size=256, batch_tokens=1 << 17)
    elapsed = time.perf_counter() - start
    tokens = sum(len(tokenizer(o)["input_ids"]) for o in outputs)
    print(f"eotd.infer on {model.device} ({model.dtype}): {len(prompts)} prompts, {tokens} tokens in {elapsed:.1f} s "
          f"= {tokens / elapsed:.0f} tok/s")
    vllm_check(result.path, prompts, 96)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
