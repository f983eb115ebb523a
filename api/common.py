"""What the API's route modules share: errors, request checks, and running an answer off the event loop."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from api.hygiene import strip_blank
from rag.pipeline import RAGPipeline
from rag.prompt import PromptTooLongError
from rag.settings import Settings
from rag.types import Answer, Turn

log = logging.getLogger("chimed_rag.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}}, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def check_text(value: str, field: str, limit: int) -> str:
    text = strip_blank(value)  # zero-width characters alone are as empty as spaces
    if not text:
        raise ApiError(400, "empty_" + field, f"'{field}' must not be empty or whitespace")
    if len(text) > limit:
        raise ApiError(413, field + "_too_long", f"'{field}' is {len(text)} characters; the limit is {limit}")
    return text


def check_top_k(top_k: int | None, settings: Settings) -> int | None:
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
    return [Turn(check_text(q, "history.question", settings.max_question_chars), a) for q, a in turns]


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
