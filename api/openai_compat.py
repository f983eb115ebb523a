"""OpenAI-compatible API: ``POST /v1/chat/completions`` over the grounded QA, ``GET /v1/models``, and
``POST /v1/completions``, which hands a raw prompt to the configured language model (what vLLM serves).

The last user message is the question; earlier user/assistant pairs are the history; system messages are
ignored (the ChiMed instruction is ours). The reply is the same answer as ``/v1/ask``: its text is the
message content, and the citations (plus the whole /v1/ask object under ``chimed_rag``) ride in extra
fields of the message (non-streaming) or of the final chunk (streaming), which OpenAI clients keep.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from api.common import ApiError, answer_json, check_history, check_text, check_top_k, drain, start_answer
from api.hygiene import is_blank
from api.schemas import ChatCompletionRequest, ChatMessage, CompletionRequest, OpenAIRequest
from rag.citations import source_lines, strip_footer, with_footer
from rag.pipeline import DISCLAIMER, RAGPipeline
from rag.protocols import GenerationRequest
from rag.settings import Settings
from rag.types import Answer

CREATED = int(time.time())
log = logging.getLogger("chimed_rag.api")


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(question, [(earlier question, its answer)]) from an OpenAI message list; earlier answers lose the
    source list and disclaimer we appended, which are no part of what was said."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "last_message_not_user", "the last user/assistant message must be from the user")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for message in turns[:-1]:
        if message.role == "user":
            if pending is not None:  # two user messages in a row: the first went unanswered
                history.append((pending, ""))
            pending = message.text()
        elif pending is not None:
            history.append((pending, strip_footer(message.text(), DISCLAIMER)))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return turns[-1].text(), history


def _extras(answer: Answer, p: RAGPipeline) -> dict[str, Any]:
    body = answer_json(answer, p)
    return {"citations": body["citations"], "chimed_rag": body}


def _usage(answer: Answer, p: RAGPipeline) -> dict[str, int]:
    prompt = answer.prompt_tokens or 0
    completion = p.generator.count_tokens(answer.answer) if answer.answer else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def footer(answer: Answer, settings: Settings) -> str:
    """What follows the answer in ``content``: numbered sources and the disclaimer (each can be turned off)."""
    sources = source_lines(answer.citations, answer.passages) if settings.openai_content_sources else []
    disclaimer = DISCLAIMER if settings.openai_content_disclaimer else None
    return with_footer("", sources, disclaimer)


def content(answer: Answer, settings: Settings) -> str:
    return "\n\n".join(part for part in (answer.answer, footer(answer, settings)) if part)


def completion_json(answer: Answer, p: RAGPipeline, model: str, cid: str) -> dict[str, Any]:
    extras = _extras(answer, p)
    message = {"role": "assistant", "content": content(answer, p.settings), **extras}
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "usage": _usage(answer, p), **extras}


async def chunk_events(items: Iterator[str | Answer], p: RAGPipeline, model: str,
                       cid: str) -> AsyncIterator[dict[str, str]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, str]:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return {"data": json.dumps(body, ensure_ascii=False)}

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for item in iterate_in_threadpool(items):
            if isinstance(item, Answer):
                tail = footer(item, p.settings)
                if tail:
                    yield chunk({"content": "\n\n" + tail})
                yield chunk({}, "stop", usage=_usage(item, p), **_extras(item, p))
            else:
                yield chunk({"content": item})
    except Exception:
        log.exception("error while streaming")  # headers are sent: report in-band, never the trace
        error = {"error": {"code": "internal_error", "message": "internal server error", "type": "server_error"}}
        yield {"data": json.dumps(error)}
    yield {"data": "[DONE]"}


def check_model_and_n(body: OpenAIRequest, model_name: str) -> None:
    if body.model != model_name:
        raise ApiError(404, "model_not_found", f"model {body.model!r} does not exist; this server serves "
                                              f"{model_name!r} (see GET /v1/models)")
    if body.n not in (None, 1):
        raise ApiError(400, "unsupported_n", "only n=1 is supported")


def generation_options(body: OpenAIRequest) -> dict[str, Any]:
    """The client's sampling fields, as generator options (the extractive backend has none to apply)."""
    options: dict[str, Any] = {"max_new_tokens": getattr(body, "max_completion_tokens", None) or body.max_tokens,
                               "temperature": body.temperature, "top_p": body.top_p, "seed": body.seed}
    if body.temperature == 0:
        options.update(do_sample=False, temperature=None)
    return {k: v for k, v in options.items() if v is not None}


def add_openai_routes(app: FastAPI, settings: Settings, get_pipeline: Callable[[Request], RAGPipeline]) -> None:
    model_name = settings.served_model_name

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list",
                "data": [{"id": model_name, "object": "model", "created": CREATED, "owned_by": "chimed-rag"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        check_model_and_n(body, model_name)
        p = get_pipeline(request)
        if len(body.messages) > settings.max_messages:
            raise ApiError(400, "too_many_messages", f"at most {settings.max_messages} messages are accepted")
        question, turns = split_messages(body.messages)
        question = check_text(question, "question", settings.max_question_chars)
        history = check_history(turns, settings)
        items = await start_answer(p, question, history, check_top_k(body.top_k, settings), body.mode,
                                   generation_options(body), body.strict, body.trace)
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            return EventSourceResponse(chunk_events(items, p, model_name, cid))
        return completion_json(await drain(items), p, model_name, cid)


async def text_completion_events(pieces: Iterator[str], model: str, cid: str) -> AsyncIterator[dict[str, str]]:
    created = int(time.time())

    def chunk(text: str, finish: str | None = None) -> dict[str, str]:
        body = {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}
        return {"data": json.dumps(body, ensure_ascii=False)}

    try:
        async for piece in iterate_in_threadpool(pieces):
            yield chunk(piece)
        yield chunk("", "stop")
    except Exception:
        log.exception("error while streaming")
        yield {"data": json.dumps({"error": {"code": "internal_error", "message": "internal server error"}})}
    yield {"data": "[DONE]"}


def add_completions_route(app: FastAPI, settings: Settings, get_pipeline: Callable[[Request], RAGPipeline]) -> None:
    model_name = settings.served_model_name

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        check_model_and_n(body, model_name)
        p = get_pipeline(request)
        if p.generator.name == "extractive":
            raise ApiError(400, "no_language_model", "raw completions need a language model generator "
                                                     "(CHIMED_RAG_GENERATOR=transformers or openai)")
        if is_blank(body.prompt):
            raise ApiError(400, "empty_prompt", "'prompt' must not be empty or whitespace")
        generation = GenerationRequest(body.prompt, body.prompt, (), generation_options(body))
        cid = f"cmpl-{uuid.uuid4().hex}"
        if body.stream:
            return EventSourceResponse(text_completion_events(p.generator.stream(generation), model_name, cid))
        text = await run_in_threadpool(p.generator.generate, generation)
        prompt_tokens = p.generator.count_tokens(body.prompt)
        completion_tokens = p.generator.count_tokens(text) if text else 0
        return {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model_name,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}
