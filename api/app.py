"""FastAPI application: grounded QA (/v1/ask), retrieval (/v1/search), index manifest, health."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import edge
from api.hygiene import strip_blank
from api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse
from api.security import without_paths
from rag.pipeline import DISCLAIMER, RAGPipeline
from rag.prompt import PromptTooLongError
from rag.settings import Settings
from rag.types import Answer, Turn

log = logging.getLogger("chimed_rag.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}}, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def _check_text(value: str, field: str, limit: int) -> str:
    text = strip_blank(value)  # zero-width characters alone are as empty as spaces
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
    return pipeline.answer_json(answer)


def check_history(turns: list[tuple[str, str]], settings: Settings) -> list[Turn]:
    if len(turns) > settings.max_history_turns:
        raise ApiError(400, "history_too_long", f"at most {settings.max_history_turns} history turns are accepted")
    for _, answer in turns:
        if len(answer) > settings.max_history_answer_chars:
            raise ApiError(413, "history.answer_too_long", f"a history answer is {len(answer)} characters; "
                                                           f"the limit is {settings.max_history_answer_chars}")
    return [Turn(_check_text(q, "history.question", settings.max_question_chars), a) for q, a in turns]


async def start_answer(p: RAGPipeline, question: str, history: list[Turn], top_k: int | None,
                       mode: str | None, options: dict[str, Any] | None = None, strict: bool | None = None,
                       trace: bool = False) -> Iterator[str | Answer]:
    """Triage, condense, retrieve and pack now, so that a bad request fails before any byte is streamed."""
    try:
        return await run_in_threadpool(p.ask_stream, question, history, top_k, mode, options, strict, trace)
    except PromptTooLongError as exc:
        raise ApiError(413, "prompt_too_long", str(exc)) from exc


async def drain(items: Iterator[str | Answer]) -> Answer:
    final = None
    async for item in iterate_in_threadpool(items):
        final = item
    assert isinstance(final, Answer)
    return final


async def sse_events(items: Iterator[str | Answer], p: RAGPipeline) -> AsyncIterator[dict[str, str]]:
    """``delta`` events with text as it is generated, then one ``answer`` event: the /v1/ask JSON."""
    try:
        async for item in iterate_in_threadpool(items):
            if isinstance(item, Answer):
                yield {"event": "answer", "data": json.dumps(answer_json(item, p), ensure_ascii=False)}
            else:
                yield {"event": "delta", "data": json.dumps({"text": item}, ensure_ascii=False)}
    except Exception:
        log.exception("error while streaming")  # headers are sent: report in-band, never the trace
        error = {"error": {"code": "internal_error", "message": "internal server error"}}
        yield {"event": "error", "data": json.dumps(error)}


def create_app(settings: Settings | None = None, pipeline: RAGPipeline | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Index, embedder and generator load once per process, never per request.
        app.state.pipeline = pipeline or RAGPipeline.from_settings(settings)
        edge.on_startup(app)
        yield

    app = edge.new_app(settings, title="ChiMed-RAG", version="0.1.0", lifespan=lifespan,
                        description="Grounded Chinese medical QA with sentence-level citations. " + DISCLAIMER)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail), exc.headers)  # e.g. 405's Allow

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
        return without_paths(get_pipeline(request).index.manifest)  # no server paths to clients

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
    async def ask(body: AskRequest, request: Request) -> Any:
        p = get_pipeline(request)
        question = _check_text(body.question, "question", settings.max_question_chars)
        top_k = _check_top_k(body.top_k, settings)
        history = check_history([(t.question, t.answer) for t in body.history], settings)
        items = await start_answer(p, question, history, top_k, body.mode, None, body.strict, body.trace)
        if body.stream:
            return EventSourceResponse(sse_events(items, p))
        return answer_json(await drain(items), p)

    from api.openai_compat import add_completions_route, add_openai_routes  # they build on this module's helpers

    add_openai_routes(app, settings, get_pipeline)
    if settings.raw_completions:  # a raw-LLM proxy without triage or disclaimer: only when asked for
        add_completions_route(app, settings, get_pipeline)
    edge.install(app, settings)
    return app
