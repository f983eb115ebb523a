"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from api.hygiene import Text

Mode = Literal["bm25", "dense", "hybrid"]

# Hard caps, whatever the settings say; the schema publishes the (lower) configured limits, and the
# handlers enforce those with 413 (text) or 400 (top_k, turns). Bodies are capped in bytes before all this.
MAX_TEXT = 16_000
MAX_TURNS = 100
MAX_NAME = 256
# Published as the schema's bounds for top_k (the upper one is the max_top_k setting), checked at runtime
# with a 400 that says the range.
TOP_K_SCHEMA: dict[str, Any] = {"minimum": 1, "x-setting-maximum": "max_top_k"}


def _integral(value: object) -> object:
    # JSON Schema counts 5.0 as an integer; strict pydantic would not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]


def BoundedInt(ge: int, le: int) -> Any:
    # The bounds inside the Annotated, so that the schema gets minimum/maximum on the integer branch.
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral)]


Tokens = BoundedInt(1, 32_768)


class RequestBody(BaseModel):
    """Request bodies are validated strictly, as JSON Schema reads them: no "1" for 1, no 0 for false."""

    model_config = ConfigDict(strict=True)


TopK = Field(None, json_schema_extra=TOP_K_SCHEMA, description="passages to retrieve")
Question = Text(MAX_TEXT, "max_question_chars", non_blank=True)
Name = Text(MAX_NAME)


class HistoryTurn(RequestBody):
    question: Question = Field(..., description="an earlier user question")  # type: ignore[valid-type]
    answer: Text(MAX_TEXT, "max_history_answer_chars") = Field(  # type: ignore[valid-type]
        ..., description="the assistant's answer to it")


class AskRequest(RequestBody):
    question: Question  # type: ignore[valid-type]
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_TURNS,
                                       json_schema_extra={"x-setting-maxItems": "max_history_turns"})
    top_k: JsonInt | None = TopK
    mode: Mode | None = None
    stream: bool = Field(False, description="stream Server-Sent Events: 'delta' text pieces, then 'answer'")
    strict: bool | None = Field(None, description="drop answer sentences the references do not support")
    trace: bool = Field(False, description="return the audit trace with the answer")


class SearchRequest(RequestBody):
    query: Question  # type: ignore[valid-type]
    top_k: JsonInt | None = TopK
    mode: Mode | None = None


class LocatorOut(BaseModel):
    """Where the passage sits in its document: PDF pages (1-based), DOCX/HTML/Markdown section path, sheet/rows."""

    pages: list[int] = Field(default_factory=list)
    section: list[str] = Field(default_factory=list)
    sheet: str = ""
    rows: list[int] = Field(default_factory=list)
    label: str = Field("", description="as a reader looks it up: '第 3 页', '第 3–4 页', 'Sheet1 第 5 行', a section")


class CitationOut(BaseModel):
    marker: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    url: str
    span: list[int]
    score: float
    locator: LocatorOut = Field(default_factory=LocatorOut)


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
    locator: LocatorOut = Field(default_factory=LocatorOut)


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


class ContentPart(RequestBody):
    """One part of a message's content; other part types (images, ...) are accepted and ignored."""

    model_config = ConfigDict(strict=True, extra="allow")
    type: Name  # type: ignore[valid-type]
    text: Text(MAX_TEXT) | None = None  # type: ignore[valid-type]


class ChatMessage(RequestBody):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Text(MAX_TEXT) | Annotated[list[ContentPart], Field(max_length=64)] | None = None  # type: ignore[valid-type]

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts carry a question
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class OpenAIRequest(RequestBody):
    """Fields shared by OpenAI's chat and completions requests; sampling fields go to the generator."""

    model: Name  # type: ignore[valid-type]
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    max_tokens: Tokens | None = None  # type: ignore[valid-type]
    seed: BoundedInt(0, 2**32 - 1) | None = None  # type: ignore[valid-type]
    stop: Name | Annotated[list[Name], Field(max_length=4)] | None = None  # type: ignore[valid-type]
    n: BoundedInt(1, 1) | None = Field(None, description="only 1 is supported")  # type: ignore[valid-type]
    user: Name | None = None  # type: ignore[valid-type]


class ChatCompletionRequest(OpenAIRequest):
    """OpenAI's chat request over the grounded QA."""

    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_TURNS * 2 + 1,
                                        json_schema_extra={"x-setting-maxItems": "max_messages"})
    top_k: JsonInt | None = TopK  # extension: passages to retrieve
    mode: Mode | None = None  # extension: retrieval mode
    strict: bool | None = Field(None, description="extension: drop answer sentences the references do not support")
    trace: bool = Field(False, description="extension: return the audit trace (in chimed_rag.trace)")
    max_completion_tokens: Tokens | None = None  # type: ignore[valid-type]


class CompletionRequest(OpenAIRequest):
    """OpenAI's (legacy) completions request: the prompt goes to the generator as is, no retrieval."""

    prompt: Text(MAX_TEXT * 2, "max_prompt_chars", non_blank=True)  # type: ignore[valid-type]


class DocumentsRequest(BaseModel):
    """``POST /v1/documents``: corpus records as in a JSONL corpus file ({id, title?, text, source?, url?,
    metadata?}); a known id replaces that document."""

    documents: list[dict[str, Any]] = Field(min_length=1, max_length=1000)
