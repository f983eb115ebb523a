"""Backpressure for the answering routes: a bounded number at once (503 + Retry-After beyond it, never a
queue), a deadline per request (504), and optional rate limiting per API key or client IP (429).

Answers run in worker threads that cannot be killed; a request past its deadline is cancelled where it
awaits (between generated pieces), so a slow generation stops at its next token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.hygiene import ASGIApp, Message, Receive, Scope, Send, send_error

log = logging.getLogger("chimed_rag.api")

RETRY_AFTER_BUSY = "1"  # seconds: answers take about that long, so a slot is likely free by then


class AnswerLimits:
    """At most ``max_concurrent`` requests to ``paths`` at once, each ended after ``timeout`` seconds."""

    def __init__(self, app: ASGIApp, paths: frozenset[str], max_concurrent: int, timeout: float) -> None:
        self.app, self.paths, self.max_concurrent, self.timeout = app, paths, max_concurrent, timeout
        self.active = 0  # one event loop per process: plain counting is race-free

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        if self.active >= self.max_concurrent:
            return await send_error(send, 503, "busy", f"{self.active} answers are in progress, the limit; "
                                    "retry shortly", {"Retry-After": RETRY_AFTER_BUSY})
        self.active += 1
        try:
            await self._with_deadline(scope, receive, send)
        finally:
            self.active -= 1

    async def _with_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        started: dict[str, bool] = {"start": False, "sse": False, "done": False}

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["start"] = True
                started["sse"] = any(k == b"content-type" and v.startswith(b"text/event-stream")
                                     for k, v in message.get("headers", []))
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                started["done"] = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracked), self.timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11
            log.warning("request to %s ended at its %.1f s deadline", scope["path"], self.timeout)
            message = f"the answer did not finish within {self.timeout:g} s"
            if not started["start"]:
                await send_error(send, 504, "deadline_exceeded", message)
            elif not started["done"]:
                await send(_end_of_stream(message, started["sse"]))


def _end_of_stream(message: str, sse: bool) -> Message:
    """The last body chunk of a response cut by the deadline: an SSE ``error`` event where SSE is spoken."""
    error = json.dumps({"error": {"code": "deadline_exceeded", "message": message}})
    body = f"event: error\r\ndata: {error}\r\n\r\n".encode() if sse else b""
    return {"type": "http.response.body", "body": body, "more_body": False}


class RateLimit:
    """A moving-window limit (``limits`` syntax, e.g. "60/minute") per API key, else per client IP."""

    def __init__(self, app: ASGIApp, paths: frozenset[str], rate: str) -> None:
        self.app, self.paths = app, paths
        self.rate = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        key = client_key(scope)
        if not self.limiter.hit(self.rate, key):
            reset, _ = self.limiter.get_window_stats(self.rate, key)
            wait = max(1, math.ceil(reset - time.time()))
            return await send_error(send, 429, "rate_limited", f"over the limit of {self.rate}; "
                                    f"retry in {wait} s", {"Retry-After": str(wait)})
        await self.app(scope, receive, send)


def client_key(scope: Scope) -> str:
    """The caller: a digest of its bearer key when it sends one (never the key itself), else its IP."""
    auth = dict(scope["headers"]).get(b"authorization", b"")
    if auth.lower().startswith(b"bearer "):
        return "key:" + hashlib.sha256(auth[7:].strip()).hexdigest()[:16]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")
