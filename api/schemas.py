"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["bm25", "dense", "hybrid"]


class HistoryTurn(BaseModel):
    question: str = Field(..., description="an earlier user question")
    answer: str = Field(..., description="the assistant's answer to it")


class AskRequest(BaseModel):
    question: str
    history: list[HistoryTurn] = Field(default_factory=list)
    top_k: int | None = None
    mode: Mode | None = None
    strict: bool | None = Field(None, description="drop answer sentences the references do not support")
    trace: bool = Field(False, description="return the audit trace with the answer")


class SearchRequest(BaseModel):
    query: str
    top_k: int | None = None
    mode: Mode | None = None


class CitationOut(BaseModel):
    marker: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    url: str
    span: list[int]
    score: float


class SentenceOut(BaseModel):
    text: str
    citations: list[CitationOut]
    support: dict[str, Any] | None = None  # label, score, evidence span, inferred / unsupported markers


class SafetyOut(BaseModel):
    level: Literal["emergency", "urgent", "routine"]
    signals: list[str]
    advice: str


class AbstentionOut(BaseModel):
    abstain: bool
    reason: str | None
    probability: float | None
    features: dict[str, float]


class HitOut(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    text: str
    source: str
    url: str
    span: list[int]
    score: float
    rank: int
    scores: dict[str, float | None]


class IndexInfo(BaseModel):
    id: str
    built_at: str
    model: str
    documents: int
    chunks: int


class AskResponse(BaseModel):
    safety: SafetyOut | None = None  # first, so that advice comes before the answer
    answer: str
    sentences: list[SentenceOut]
    citations: list[CitationOut]
    passages: list[HitOut]
    dropped_markers: list[int]
    generator: str
    index: IndexInfo
    disclaimer: str
    timings: dict[str, float]
    abstention: AbstentionOut | None = None
    notes: list[str] = Field(default_factory=list)
    trace: dict[str, Any] | None = None


class SearchResponse(BaseModel):
    hits: list[HitOut]
    timings: dict[str, float]


class ErrorBody(BaseModel):
    error: dict[str, Any]
