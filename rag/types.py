"""Typed records of the online pipeline: hits, citations, answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from indexer.types import Locator, Passage

__all__ = ["Answer", "Citation", "Hit", "Locator", "Passage", "Sentence", "Turn"]


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and the raw score of every retriever that saw it."""

    passage: Passage
    score: float
    rank: int
    scores: dict[str, float | None] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        p = self.passage
        return {
            "chunk_id": p.chunk_id, "doc_id": p.doc_id, "title": p.title, "text": p.text,
            "source": p.source, "url": p.url, "span": list(p.span), "score": self.score,
            "rank": self.rank, "scores": dict(self.scores), "locator": p.locator().to_json(),
        }


@dataclass(frozen=True)
class Citation:
    """Marker ``[n]`` of an answer resolved to the passage it points at."""

    marker: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    url: str
    span: tuple[int, int]
    score: float
    locator: Locator = field(default_factory=Locator)  # page(s), section path or sheet/rows

    @classmethod
    def from_hit(cls, marker: int, hit: Hit) -> Citation:
        p = hit.passage
        return cls(marker, p.chunk_id, p.doc_id, p.title, p.source, p.url, p.span, hit.score, p.locator())

    def to_json(self) -> dict[str, Any]:
        return {"marker": self.marker, "chunk_id": self.chunk_id, "doc_id": self.doc_id, "title": self.title,
                "source": self.source, "url": self.url, "span": list(self.span), "score": self.score,
                "locator": self.locator.to_json()}


@dataclass(frozen=True)
class Sentence:
    text: str
    citations: tuple[Citation, ...] = ()
    line_break: bool = False  # the answer starts a new line after it (list-style answers keep their layout)


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...]
    generator: str
    dropped_markers: tuple[int, ...] = ()
    timings: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    prompt_tokens: int | None = None
    standalone_query: str = ""  # what retrieval searched for: the question, condensed with the conversation
    # Trust layer (rag.triage, rag.support, rag.abstention, rag.audit); typed loosely here so that
    # the record module does not import the components.
    safety: Any = None  # rag.triage.Safety
    support: tuple[Any, ...] = ()  # rag.support.SentenceSupport, one per kept sentence
    abstention: Any = None  # rag.abstention.Abstention
    notes: tuple[str, ...] = ()  # what the system changed in the answer (strict drops, withheld doses)
    trace: dict[str, Any] | None = field(default=None, hash=False, compare=False)
