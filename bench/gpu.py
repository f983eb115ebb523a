"""GPU (f): generation throughput and time-to-first-token of the transformers backend with a small
LLaMA; runs only where CUDA is available and says so otherwise."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any


def run_gpu(model: Path | None, new_tokens: int = 128) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        message = f"GPU part skipped: no CUDA device visible to torch (this torch build: {torch.__version__})"
        print(message)
        return {"skipped": message}
    if model is None or not (model / "config.json").exists():
        message = f"GPU part skipped: no local LLaMA folder at {model} (run the test suite once to convert SmolLM2)"
        print(message)
        return {"skipped": message}
    from transformers import AutoTokenizer, LlamaForCausalLM, TextIteratorStreamer

    tokenizer = AutoTokenizer.from_pretrained(model)
    llm = LlamaForCausalLM.from_pretrained(model, dtype=torch.float16).to("cuda").eval()
    prompt = "[human]:感冒怎么处理？\n[bot]:"
    inputs = tokenizer(prompt, return_tensors="pt").to("cuda")
    llm.generate(**inputs, max_new_tokens=8, do_sample=False)  # warm-up
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    kwargs = dict(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, streamer=streamer)
    start = time.perf_counter()
    thread = threading.Thread(target=llm.generate, kwargs=kwargs)
    thread.start()
    first = None
    for _ in streamer:
        if first is None:
            first = time.perf_counter() - start
    thread.join()
    total = time.perf_counter() - start
    return {"device": torch.cuda.get_device_name(0), "model": model.name, "new_tokens": new_tokens,
            "ttft_ms": round((first or total) * 1000, 1), "tokens_per_s": round(new_tokens / total, 1)}
