"""The contracts between pipeline stages: any retriever, embedder or generator that fits plugs in."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from indexer.embedding import Embedder
from rag.types import Hit

__all__ = ["Embedder", "GenerationRequest", "Generator", "Guidance", "Note", "Retriever"]


@runtime_checkable
class Retriever(Protocol):
    name: str

    def search(self, query: str, top_k: int = 10) -> list[Hit]: ...

    def batch_search(self, queries: Sequence[str], top_k: int = 10) -> list[list[Hit]]: ...


@dataclass(frozen=True)
class Guidance:
    """What the answer should serve: the question's intents (rag.intent names) and, when triage raised a red
    flag, the emergency it is about. LLM generators see it in the prompt; the extractive composer uses it
    to choose sentences."""

    intents: tuple[str, ...] = ()
    emergency: tuple[str, ...] = ()  # triage signals the answer body must be about (stroke_signs, ...)


class Note(str):
    """A piece a generator yields that remarks on the answer ("参考资料未涉及：…") rather than being part of it:
    the pipeline reports it as a note, never as an answer sentence to cite."""


@dataclass(frozen=True)
class GenerationRequest:
    """What a generator gets: the packed prompt, and the question and numbered passages it was built from."""

    prompt: str
    question: str
    passages: tuple[Hit, ...]
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    guidance: Guidance = field(default_factory=Guidance)


@runtime_checkable
class Generator(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def context_window(self) -> int: ...

    @property
    def max_new_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def generate(self, request: GenerationRequest) -> str: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]: ...

    def describe(self) -> dict[str, Any]: ...
