"""Input hygiene at the edge: what text the API accepts, how big a body may be, and the OpenAPI contract
that says so. Nothing here knows about retrieval; it only keeps malformed input away from it.

* Text fields are NFC-normalised; C0/C1 controls (other than tab and newlines), lone surrogates and Unicode
  non-characters are rejected with a 422 naming the field (they broke the tokenizer and the prompt hashing).
* Zero-width characters alone count as empty text.
* A body over ``max_body_bytes`` gets 413 before it is read whole (``BodyLimit``).
* No exception reaches the server as a dropped keep-alive connection (``ErrorGuard``).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("chimed_rag.api")

# Regex character-class bodies, shared by the validator and the pattern published in the OpenAPI schema,
# written so that ECMA-262 (JSON Schema) and Python read them alike. Non-characters outside the BMP
# (U+1FFFE, ...) are valid scalar values (Unicode Corrigendum #9), pass through tokenizers, and are let be.
# Lone surrogates are rejected too, but left out of the published pattern: they are not Unicode scalar
# values, so schema validators built on Rust's regex (schemathesis, jsonschema-rs) refuse the range.
CONTROL_AND_NONCHARS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\ufdd0-\\ufdef\\ufffe\\uffff"
BAD_CHARS = CONTROL_AND_NONCHARS + "\\ud800-\\udfff"
SPACES = "\\t\\n\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
ZERO_WIDTH = "\\u00ad\\u180e\\u200b-\\u200f\\u2060-\\u2064\\ufeff"
BLANK = SPACES + ZERO_WIDTH
_NOT = CONTROL_AND_NONCHARS
TEXT_PATTERN = f"^[^{_NOT}]*$"
NON_BLANK_PATTERN = f"^[^{_NOT}]*[^{_NOT}{BLANK}][^{_NOT}]*$"
_BAD = re.compile(f"[{BAD_CHARS}]")
_BLANK = re.compile(f"[{BLANK}]*")
_EDGES = re.compile(f"^[{BLANK}]+|[{BLANK}]+$")


def check_chars(text: str) -> str:
    """``text`` in NFC; ValueError naming the first character that is not text."""
    bad = _BAD.search(text)
    if bad is not None:
        point = ord(bad.group())
        kind = ("a lone surrogate" if 0xD800 <= point <= 0xDFFF else
                "a control character" if point < 0xA0 else "a Unicode non-character")
        raise ValueError(f"contains U+{point:04X} ({kind}) at position {bad.start()}")
    return unicodedata.normalize("NFC", text)


def _checked_if_text(value: object) -> object:
    # Before pydantic's own str checks, which reject a lone surrogate with a vaguer message.
    return check_chars(value) if isinstance(value, str) else value


def is_blank(text: str) -> bool:
    """True for empty text and for text of only whitespace and zero-width characters."""
    return _BLANK.fullmatch(text) is not None


def strip_blank(text: str) -> str:
    """``text`` without leading and trailing whitespace or zero-width characters."""
    return _EDGES.sub("", text)


def _non_blank(text: str) -> str:
    if is_blank(text):
        raise ValueError("must not be empty or whitespace")
    return text


def Text(max_length: int, setting: str | None = None, *, non_blank: bool = False,
         description: str | None = None) -> Any:
    """A ``str`` field type: a hard ``max_length`` (the published one comes from ``setting`` when given),
    checked characters, NFC; ``non_blank`` publishes the "has a visible character" pattern as well."""
    extra: dict[str, Any] = {"pattern": NON_BLANK_PATTERN if non_blank else TEXT_PATTERN}
    if setting:
        extra["x-setting-maxLength"] = setting
    return Annotated[str, Field(max_length=max_length, description=description, json_schema_extra=extra),
                     BeforeValidator(_checked_if_text)]


# -- the OpenAPI contract: limits from settings, and every error a route really returns ------------------

ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}

# Before OpenAPI 3.2, the schema of a text/event-stream response describes each event.
SSE_EVENT_SCHEMA = {"type": "object", "description": "One Server-Sent Event (when the body asks to stream); "
                    "`data` is a JSON document, or [DONE]", "required": ["data"],
                    "properties": {"event": {"type": "string"}, "data": {"type": "string"},
                                   "id": {"type": "string"}, "retry": {"type": "integer"}}}

_ERRORS = {
    400: "Bad request: a rule the schema cannot express (blank text, range, malformed JSON)",
    401: "Missing or wrong API key or admin token (`Authorization: Bearer <key>`)",
    403: "Admin routes are closed: no CHIMED_RAG_ADMIN_TOKEN is configured on the server",
    404: "Unknown model or resource",
    409: "The new index generation failed verification; the old one keeps serving",
    413: "Body over the size limit, or text over a configured limit",
    422: "Validation error; the message names the field",
    429: "Rate limit exceeded; see Retry-After",
    500: "Internal error (details go to the server log only)",
    503: "Too many answers in progress (see Retry-After), or not ready (/readyz lists the problems)",
    504: "The answer did not finish within the request deadline",
}


def _errors_for(route: APIRoute, work: bool, settings: Any) -> list[int]:
    codes = [500]
    if settings.api_keys and route.path not in settings.auth_exempt_paths:
        codes.append(401)
    if "POST" in route.methods:
        codes += [400, 413, 422]
    if work:
        codes += [503, 504] + ([429] if settings.rate_limit else [])
    if route.path in ("/v1/chat/completions", "/v1/completions"):
        codes.append(404)
    if route.path.startswith(("/v1/documents", "/v1/admin")):  # bearer-token admin routes (api/admin.py)
        codes += [401, 403, 404, 409]
    if route.path == "/readyz":
        codes.append(503)
    return sorted(set(codes))


def document(app: FastAPI, settings: Any, work_paths: frozenset[str], stream_paths: frozenset[str]) -> None:
    """Declare each route's error responses and SSE content, and publish limits as the settings set them."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for code in _errors_for(route, route.path in work_paths, settings):
            schema = {"type": "object"} if route.path == "/readyz" else ERROR_SCHEMA  # readiness: its own body
            route.responses.setdefault(code, {"description": _ERRORS[code],
                                              "content": {"application/json": {"schema": schema}}})
        if route.path in stream_paths:
            route.responses.setdefault(200, {}).setdefault("content", {})["text/event-stream"] = {
                "schema": SSE_EVENT_SCHEMA}
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _apply_settings(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _apply_settings(schema: dict[str, Any], settings: Any) -> dict[str, Any]:
    """Replace each ``x-setting-<keyword>: <setting>`` marker by ``<keyword>: <the setting's value>``."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in [k for k in node if isinstance(k, str) and k.startswith("x-setting-")]:
                keyword = key.removeprefix("x-setting-")
                value = getattr(settings, node.pop(key))
                node[keyword] = min(value, node[keyword]) if keyword in node else value
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


# -- ASGI middleware -----------------------------------------------------------------------------------

async def send_error(send: Send, status: int, code: str, message: str,
                     headers: dict[str, str] | None = None) -> None:
    """A JSON error response, written directly (middleware runs outside FastAPI's handlers)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over ``limit`` bytes: at once from Content-Length, else as soon as the chunks pass it.
    The body is buffered (at most ``limit`` bytes) and replayed, so the app never sees a partial one."""

    def __init__(self, app: ASGIApp, limit: int, paths: dict[str, int] | None = None) -> None:
        # ``paths``: larger limits for some routes (file uploads), by exact path.
        self.app, self.limit, self.paths = app, limit, paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.paths.get(scope.get("path", ""), self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._too_large(send, limit)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await self._too_large(send, limit)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        # The rest of the body is never read, so the connection cannot be reused: say so.
        await send_error(send, 413, "body_too_large", f"the request body is over {limit} bytes",
                         {"Connection": "close"})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: disconnect notices, as usual

    return replayed


class ErrorGuard:
    """The outermost middleware: an exception that escaped every handler becomes a logged 500, and is not
    re-raised to the server, which would drop the keep-alive connection under the client's next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if not started:  # FastAPI's own 500 handler has usually answered already
                log.exception("unhandled error")
                await send_error(send, 500, "internal_error", "internal server error")
