"""FastAPI application: grounded QA (/v1/ask), retrieval (/v1/search), index manifest, health."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse
from rag.pipeline import DISCLAIMER, RAGPipeline
from rag.prompt import PromptTooLongError
from rag.settings import Settings
from rag.types import Answer, Turn

log = logging.getLogger("chimed_rag.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def _check_text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise ApiError(400, "empty_" + field, f"'{field}' must not be empty or whitespace")
    if len(text) > limit:
        raise ApiError(413, field + "_too_long", f"'{field}' is {len(text)} characters; the limit is {limit}")
    return text


def _check_top_k(top_k: int | None, settings: Settings) -> int | None:
    if top_k is not None and not 1 <= top_k <= settings.max_top_k:
        raise ApiError(400, "top_k_out_of_range", f"'top_k' must be between 1 and {settings.max_top_k}")
    return top_k


def answer_json(answer: Answer, pipeline: RAGPipeline) -> dict[str, Any]:
    support = list(answer.support) + [None] * (len(answer.sentences) - len(answer.support))
    return {
        "safety": answer.safety.to_json() if answer.safety else None,
        "answer": answer.answer,
        "sentences": [{"text": s.text, "citations": [c.to_json() for c in s.citations],
                       "support": x.to_json() if x else None} for s, x in zip(answer.sentences, support)],
        "citations": [c.to_json() for c in answer.citations],
        "passages": [h.to_json() for h in answer.passages],
        "dropped_markers": list(answer.dropped_markers),
        "generator": answer.generator,
        "index": pipeline.index_info(),
        "disclaimer": DISCLAIMER,
        "timings": answer.timings,
        "abstention": answer.abstention.to_json() if answer.abstention else None,
        "notes": list(answer.notes),
        "trace": answer.trace,
    }


def create_app(settings: Settings | None = None, pipeline: RAGPipeline | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Index, embedder and generator load once per process, never per request.
        app.state.pipeline = pipeline or RAGPipeline.from_settings(settings)
        yield

    app = FastAPI(title="ChiMed-RAG", version="0.1.0", lifespan=lifespan,
                  description="Grounded Chinese medical QA with sentence-level citations. " + DISCLAIMER)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the trace goes to the log, never to the client
        return _error(500, "internal_error", "internal server error")

    def get_pipeline(request: Request) -> RAGPipeline:
        return request.app.state.pipeline  # type: ignore[no-any-return]

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        p = get_pipeline(request)
        return {"status": "ok", "index": p.index_info()["id"], "generator": p.generator.name}

    @app.get("/v1/index")
    async def index_manifest(request: Request) -> dict[str, Any]:
        return get_pipeline(request).index.manifest

    @app.post("/v1/search", response_model=SearchResponse)
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        p = get_pipeline(request)
        query = _check_text(body.query, "query", settings.max_question_chars)
        top_k = _check_top_k(body.top_k, settings)
        start = time.perf_counter()
        result = await run_in_threadpool(p.search, query, top_k, body.mode)
        timings = {**result.timings, "total_ms": round((time.perf_counter() - start) * 1000, 2)}
        return {"hits": [h.to_json() for h in result.hits], "timings": timings}

    @app.post("/v1/ask", response_model=AskResponse)
    async def ask(body: AskRequest, request: Request) -> dict[str, Any]:
        p = get_pipeline(request)
        question = _check_text(body.question, "question", settings.max_question_chars)
        top_k = _check_top_k(body.top_k, settings)
        if len(body.history) > settings.max_history_turns:
            raise ApiError(400, "history_too_long", f"at most {settings.max_history_turns} history turns are accepted")
        history = [Turn(_check_text(t.question, "history.question", settings.max_question_chars), t.answer)
                   for t in body.history]
        try:
            answer = await run_in_threadpool(p.ask, question, history, top_k, body.mode, None, body.strict,
                                             body.trace)
        except PromptTooLongError as exc:
            raise ApiError(413, "prompt_too_long", str(exc)) from exc
        return answer_json(answer, p)

    return app
