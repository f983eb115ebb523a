"""Generation on an OpenAI-compatible server: vLLM, TGI, SGLang, llama.cpp (the way to serve ChiMed-GPT 13B).

``completions`` mode (default) sends the packed ChiMed prompt as is to ``/v1/completions``: ChiMed-GPT
has no chat template, and the prompt already holds the ``[human]:…\\n[bot]:`` conversation.
``chat`` mode sends it as one user message to ``/v1/chat/completions``, for servers that only offer chat.
Output stops at the next ``[human]:`` as with the in-process backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rag.prompt import HUMAN
from rag.protocols import GenerationRequest


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str = "http://127.0.0.1:8001/v1"
    api_key: str = "EMPTY"
    model: str = "SYNLP/ChiMed-GPT-1.0"
    mode: Literal["completions", "chat"] = "completions"
    tokenizer: str | None = None  # hub id or path of the served model's tokenizer, for prompt packing
    timeout: float = 300.0
    context_window: int = 4096
    max_new_tokens: int = 512
    do_sample: bool = True
    top_p: float = 0.9
    temperature: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = (HUMAN,)


class OpenAIGenerator:
    def __init__(self, config: OpenAIConfig | None = None) -> None:
        from openai import OpenAI

        self.config = config or OpenAIConfig()
        self.client = OpenAI(base_url=self.config.base_url, api_key=self.config.api_key,
                             timeout=self.config.timeout, max_retries=0)
        self.tokenizer: Any = None
        if self.config.tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.config.tokenizer)

    @property
    def name(self) -> str:
        return f"openai:{self.config.model}"

    @property
    def context_window(self) -> int:
        return self.config.context_window

    @property
    def max_new_tokens(self) -> int:
        return self.config.max_new_tokens

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", **{k: v for k, v in asdict(self.config).items() if k != "api_key"}}

    def check_reachable(self) -> str | None:
        """None when the server lists its models within 3 s, else why not (what /readyz reports)."""
        from openai import OpenAIError

        try:
            self.client.with_options(timeout=3.0, max_retries=0).models.list()
        except OpenAIError as exc:
            return f"{self.config.base_url}: {type(exc).__name__}"
        return None

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        # Without the tokenizer: every token of a byte-fallback BPE/SentencePiece vocabulary covers at least
        # one UTF-8 byte, so bytes + BOS bound the count from above (packs fewer passages, never too many).
        return len(text.encode("utf-8")) + 1

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        options = {**asdict(self.config), **request.options}
        params: dict[str, Any] = {"model": self.config.model, "max_tokens": int(options["max_new_tokens"]),
                                  "stop": list(self.config.stop)}
        if bool(options["do_sample"]):
            params.update(top_p=float(options["top_p"]), temperature=float(options["temperature"]))
        else:
            params.update(temperature=0.0)
        if options.get("seed") is not None:
            params["seed"] = int(options["seed"])
        return params

    def _call(self, request: GenerationRequest, stream: bool) -> Any:
        params = self._params(request)
        if self.config.mode == "chat":
            messages = [{"role": "user", "content": request.prompt}]
            return self.client.chat.completions.create(messages=messages, stream=stream, **params)
        return self.client.completions.create(prompt=request.prompt, stream=stream, **params)

    def _text(self, choice: Any) -> str:
        if self.config.mode == "chat":
            part = getattr(choice, "delta", None) or getattr(choice, "message", None)
            return (part.content or "") if part is not None else ""
        return choice.text or ""

    def generate(self, request: GenerationRequest) -> str:
        response = self._call(request, stream=False)
        return _trim(self._text(response.choices[0]), self.config.stop)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text as the server sends it; a server that ignores ``stop`` is cut at the stop string."""
        held = ""
        emitted = 0
        for chunk in self._call(request, stream=True):
            if not chunk.choices:
                continue
            held += self._text(chunk.choices[0])
            if any(s in held for s in self.config.stop):
                break
            safe = len(held) - max(len(s) for s in self.config.stop)  # a tail may start a stop string
            if safe > emitted:
                yield held[emitted:safe]
                emitted = safe
        rest = held[:_stop_at(held, self.config.stop)].rstrip()
        if len(rest) > emitted:
            yield rest[emitted:]


def _stop_at(text: str, stops: tuple[str, ...]) -> int:
    return min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))


def _trim(text: str, stops: tuple[str, ...]) -> str:
    return text[:_stop_at(text, stops)].strip()
