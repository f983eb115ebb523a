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
    stream: bool = Field(False, description="stream Server-Sent Events: 'delta' text pieces, then 'answer'")
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
    generation: int = 0
    calibration: str = "missing"
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
    standalone_query: str
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


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts carry a question
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class OpenAIRequest(BaseModel):
    """Fields shared by OpenAI's chat and completions requests; sampling fields go to the generator."""

    model: str
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    user: str | None = None


class ChatCompletionRequest(OpenAIRequest):
    """OpenAI's chat request over the grounded QA."""

    messages: list[ChatMessage] = Field(..., min_length=1)
    top_k: int | None = None  # extension: passages to retrieve
    mode: Mode | None = None  # extension: retrieval mode
    strict: bool | None = Field(None, description="extension: drop answer sentences the references do not support")
    trace: bool = Field(False, description="extension: return the audit trace (in chimed_rag.trace)")
    max_completion_tokens: int | None = None


class CompletionRequest(OpenAIRequest):
    """OpenAI's (legacy) completions request: the prompt goes to the generator as is, no retrieval."""

    prompt: str


class DocumentsRequest(BaseModel):
    """``POST /v1/documents``: corpus records as in a JSONL corpus file ({id, title?, text, source?, url?,
    metadata?}); a known id replaces that document."""

    documents: list[dict[str, Any]] = Field(min_length=1, max_length=1000)
