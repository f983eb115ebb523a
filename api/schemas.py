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
    answer: str
    sentences: list[SentenceOut]
    citations: list[CitationOut]
    passages: list[HitOut]
    dropped_markers: list[int]
    generator: str
    index: IndexInfo
    disclaimer: str
    timings: dict[str, float]


class SearchResponse(BaseModel):
    hits: list[HitOut]
    timings: dict[str, float]


class ErrorBody(BaseModel):
    error: dict[str, Any]
