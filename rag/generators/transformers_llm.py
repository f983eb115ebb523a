"""ChiMed-GPT (or any LLaMA-family causal LM) through transformers, in-process.

The loading code is the one a GPU user runs: ``LlamaForCausalLM.from_pretrained`` on a hub id
(``SYNLP/ChiMed-GPT-1.0``) or a local path, fp16 + ``device_map="auto"`` on CUDA, fp32 on CPU.
Tests run this very code on a small real LLaMA model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rag.prompt import HUMAN
from rag.protocols import GenerationRequest

CHIMED_GPT = "SYNLP/ChiMed-GPT-1.0"


@dataclass(frozen=True)
class LLMConfig:
    model: str = CHIMED_GPT
    gguf_file: str | None = None  # for models shipped as GGUF (tests); dequantised on load
    device: str = "auto"  # auto: CUDA when available, else CPU
    context_window: int = 4096  # ChiMed-GPT (LLaMA2-13B)
    max_new_tokens: int = 512
    do_sample: bool = True
    top_p: float = 0.9
    temperature: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = (HUMAN,)


def _trim_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut].strip()


class TransformersGenerator:
    def __init__(self, config: LLMConfig | None = None) -> None:
        import torch
        from transformers import AutoTokenizer, LlamaForCausalLM

        self.config = config or LLMConfig()
        cuda = torch.cuda.is_available() and self.config.device in ("auto", "cuda")
        load: dict[str, Any] = {"dtype": torch.float16, "device_map": "auto"} if cuda else {"dtype": torch.float32}
        if self.config.gguf_file:
            load["gguf_file"] = self.config.gguf_file
        tok_kwargs = {"gguf_file": self.config.gguf_file} if self.config.gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.config.model, **tok_kwargs)
        self.model = LlamaForCausalLM.from_pretrained(self.config.model, **load)
        self.model.eval()
        self._lock = threading.Lock()  # one generation at a time per model instance
        model_window = int(getattr(self.model.config, "max_position_embeddings", self.config.context_window))
        self._context_window = min(self.config.context_window, model_window)

    @property
    def name(self) -> str:
        return f"transformers:{self.config.model}"

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def max_new_tokens(self) -> int:
        return self.config.max_new_tokens

    def describe(self) -> dict[str, Any]:
        return {"backend": "transformers", **asdict(self.config), "context_window": self.context_window,
                "device": str(self.model.device), "dtype": str(self.model.dtype)}

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _generate_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        import torch

        inputs = self.tokenizer(request.prompt, return_tensors="pt").to(self.model.device)
        options = {**asdict(self.config), **request.options}
        kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": int(options["max_new_tokens"]),
            "do_sample": bool(options["do_sample"]),
            "repetition_penalty": float(options["repetition_penalty"]),
            "stop_strings": list(self.config.stop),
            "tokenizer": self.tokenizer,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if kwargs["do_sample"]:
            kwargs.update(top_p=float(options["top_p"]), temperature=float(options["temperature"]))
        if options.get("seed") is not None:
            torch.manual_seed(int(options["seed"]))
        return kwargs

    def generate(self, request: GenerationRequest) -> str:
        import torch

        kwargs = self._generate_kwargs(request)
        prompt_len = kwargs["input_ids"].shape[1]
        with self._lock, torch.inference_mode():
            output = self.model.generate(**kwargs)
        text = self.tokenizer.decode(output[0, prompt_len:], skip_special_tokens=True)
        return _trim_at_stop(text, self.config.stop)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text pieces as they are generated; stops cleanly at the next ``[human]:``."""
        import torch
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = {**self._generate_kwargs(request), "streamer": streamer}

        def work() -> None:
            with self._lock, torch.inference_mode():
                self.model.generate(**kwargs)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        emitted = ""
        held = ""
        for piece in streamer:
            held += piece
            trimmed = _trim_at_stop(held, self.config.stop) if any(s in held for s in self.config.stop) else None
            if trimmed is not None:
                if len(trimmed) > len(emitted):
                    yield trimmed[len(emitted):]
                break
            # Hold back a tail that could be the start of a stop string.
            safe = len(held) - max(len(s) for s in self.config.stop)
            if safe > len(emitted):
                yield held[len(emitted):safe]
                emitted = held[:safe]
        else:
            rest = held.rstrip()
            if len(rest) > len(emitted):
                yield rest[len(emitted):]
        thread.join()
