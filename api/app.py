"""FastAPI application: grounded QA (/v1/ask), retrieval (/v1/search), the live index, health, admin."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import edge
from api.admin import add_admin_routes
from api.common import (
    ApiError,
    answer_json,
    check_history,
    check_text,
    check_top_k,
    drain,
    error_response,
    sse_events,
    start_answer,
    validation_message,
)
from api.openai_compat import add_completions_route, add_openai_routes
from api.page import add_page_routes
from api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse
from api.security import without_paths
from rag.live import LiveIndex, start_watcher
from rag.pipeline import DISCLAIMER, RAGPipeline
from rag.settings import Settings

log = logging.getLogger("chimed_rag.api")


def health_warnings(p: RAGPipeline) -> list[str]:
    if p.settings.abstention and p.calibration in ("missing", "stale"):
        return [f"index {p.index.index_id} generation {p.index.generation} has no valid abstention calibration "
                f"({p.calibration}): questions the references do not cover are answered anyway; "
                "run 'chimed-rag calibrate'"]
    return []


def readiness(live: LiveIndex) -> dict[str, Any]:
    """Index loaded and verified (at load), calibration present, generator reachable."""
    p = live.pipeline
    problems = health_warnings(p)
    check = getattr(p.generator, "check_reachable", None)  # only remote generators can be unreachable
    unreachable = check() if check else None
    if unreachable:
        problems.append(f"generator {p.generator.name} unreachable: {unreachable}")
    return {"ready": not problems, "index": p.index.index_id, "generation": p.index.generation,
            "calibration": p.calibration, "generator": p.generator.name, "problems": problems,
            "last_reload_error": live.last_error}


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # Allow lists every route's methods on this path, not only the first route's
            methods = {m for r in request.app.routes if isinstance(r, APIRoute)
                       and r.path_regex.match(request.url.path) for m in r.methods}
            headers = {**(headers or {}), "Allow": ", ".join(sorted(methods))}
        return error_response(exc.status_code, "http_error", str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the trace goes to the log, never to the client
        return error_response(500, "internal_error", "internal server error")


def create_app(settings: Settings | None = None, pipeline: RAGPipeline | None = None,
               live: LiveIndex | None = None) -> FastAPI:
    """``live``: an already opened live index (``serve`` opens it first, so that a bad index is a one-line
    error before the server starts); ``pipeline``: serve this one; neither: open ``settings.index_dir``."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Index, embedder and generator load once per process; later generations swap in (rag.live).
        nonlocal live
        if live is None:
            live = LiveIndex(pipeline, settings) if pipeline else await run_in_threadpool(LiveIndex.open, settings)
        for warning in health_warnings(live.pipeline):
            log.warning(warning)
        app.state.live = live
        edge.on_startup(app)
        stop = start_watcher(live, settings.reload_interval)
        yield
        stop.set()
        live.request_reload()  # wakes the watcher so that it sees the stop

    app = edge.new_app(settings, title="ChiMed-RAG", version="0.1.0", lifespan=lifespan,
                       description="Grounded Chinese medical QA with sentence-level citations. " + DISCLAIMER)
    add_error_handlers(app)

    def get_live(request: Request) -> LiveIndex:
        return request.app.state.live  # type: ignore[no-any-return]

    def get_pipeline(request: Request) -> RAGPipeline:
        return get_live(request).pipeline  # taken once per request: a reload never changes it midway

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        p = get_pipeline(request)
        warnings = health_warnings(p)
        return {"status": "degraded" if warnings else "ok", "index": p.index.index_id,
                "generation": p.index.generation, "generator": p.generator.name, "calibration": p.calibration,
                "warnings": warnings}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        body = await run_in_threadpool(readiness, get_live(request))
        return JSONResponse(status_code=200 if body["ready"] else 503, content=body)

    @app.get("/v1/index")
    async def index_manifest(request: Request) -> dict[str, Any]:
        p = get_pipeline(request)
        return without_paths({**p.index.manifest, "live": p.index_info()})  # no server paths to clients

    @app.post("/v1/search", response_model=SearchResponse)
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        p = get_pipeline(request)
        query = check_text(body.query, "query", settings.max_question_chars)
        top_k = check_top_k(body.top_k, settings)
        start = time.perf_counter()
        result = await run_in_threadpool(p.search, query, top_k, body.mode)
        timings = {**result.timings, "total_ms": round((time.perf_counter() - start) * 1000, 2)}
        return {"hits": [h.to_json() for h in result.hits], "timings": timings}

    @app.post("/v1/ask", response_model=AskResponse)
    async def ask(body: AskRequest, request: Request) -> Any:
        p = get_pipeline(request)
        question = check_text(body.question, "question", settings.max_question_chars)
        top_k = check_top_k(body.top_k, settings)
        history = check_history([(t.question, t.answer) for t in body.history], settings)
        items = await start_answer(p, question, history, top_k, body.mode, None, body.strict, body.trace)
        if body.stream:
            return EventSourceResponse(sse_events(items, p))
        return answer_json(await drain(items), p)

    add_openai_routes(app, settings, get_pipeline)
    if settings.raw_completions:  # a raw-LLM proxy without triage or disclaimer: only when asked for
        add_completions_route(app, settings, get_pipeline)
    add_admin_routes(app, settings, get_live)
    add_page_routes(app)
    edge.install(app, settings)
    return app
