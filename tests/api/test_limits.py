"""Body limit, backpressure, deadline, rate limit and graceful shutdown, on real server processes."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import Guarded, running_server, server_process


def test_body_over_the_limit_gets_413_before_it_is_sent(server: str) -> None:
    """Only the headers go out: the 413 arrives while the 2 MB body is still unsent."""
    url = urlsplit(server)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2000000\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):  # headers and body may come in separate packets; the server closes
            reply += chunk
    reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "connection: close" in reply.lower() and "body_too_large" in reply


def test_chunked_body_over_the_limit_gets_413(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(30):
            yield b"a" * 65_536  # about 2 MB in all, with no Content-Length
        yield b'"}'

    r = httpx.post(f"{server}/v1/ask", content=chunks(), headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert httpx.post(f"{server}/v1/search", json={"query": "头痛"}, timeout=30).status_code == 200


def test_beyond_the_concurrency_limit_503_with_retry_after(guarded: Guarded) -> None:
    """One answer at a time: of requests sent together, the extra ones are turned away at once."""
    def ask(_: int) -> tuple[int, str | None, float]:
        start = time.perf_counter()
        r = httpx.post(f"{guarded.base}/v1/ask", json={"question": "高血压要注意什么？", "top_k": 8},
                       headers=guarded.headers(0), timeout=60)
        return r.status_code, r.headers.get("Retry-After"), time.perf_counter() - start

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, range(8)))
    statuses = [s for s, _, _ in results]
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) <= {200, 503}
    busy = [(after, seconds) for status, after, seconds in results if status == 503]
    assert all(after == "1" for after, _ in busy)
    ok = [seconds for status, _, seconds in results if status == 200]
    assert min(s for _, s in busy) < max(ok)  # turned away immediately, not queued behind the answer


def test_rate_limit_per_key_429_with_retry_after(guarded: Guarded) -> None:
    statuses, retry = [], None
    for _ in range(32):  # the limit is 30/minute, per key
        r = httpx.post(f"{guarded.base}/v1/search", json={"query": "头痛"}, headers=guarded.headers(1), timeout=30)
        statuses.append(r.status_code)
        if r.status_code == 429:
            retry = r.headers.get("Retry-After")
            assert r.json()["error"]["code"] == "rate_limited"
    assert statuses[:30] == [200] * 30 and statuses[30:] == [429, 429], statuses
    assert retry is not None and 1 <= int(retry) <= 60
    # Another key has its own budget.
    r = httpx.post(f"{guarded.base}/v1/search", json={"query": "头痛"}, headers=guarded.headers(0), timeout=30)
    assert r.status_code == 200


@pytest.fixture(scope="module")
def hurried(corpus_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose deadline (1 ms) no answer can meet."""
    folder = tmp_path_factory.mktemp("hurried")
    env = {"CHIMED_RAG_REQUEST_TIMEOUT": "0.001", "CHIMED_RAG_AUDIT_SECRET_FILE": str(folder / "audit.key")}
    with running_server(corpus_index.path, folder / "server.log", env) as base:
        yield base


@pytest.mark.parametrize("stream", [False, True])
def test_past_the_deadline_504(hurried: str, stream: bool) -> None:
    r = httpx.post(f"{hurried}/v1/ask", json={"question": "感冒怎么处理？", "stream": stream}, timeout=30)
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "deadline_exceeded" and "0.001 s" in r.json()["error"]["message"]
    assert httpx.get(f"{hurried}/healthz").status_code == 200  # the deadline is for answering routes


def test_sigterm_lets_the_request_in_flight_finish(corpus_index: Any, tmp_path: Path) -> None:
    """The request is provably in flight when the signal lands: its headers and half its body are sent
    before SIGTERM, the rest after; the server still reads it, answers it, and only then exits."""
    env = {"CHIMED_RAG_AUDIT_SECRET_FILE": str(tmp_path / "audit.key")}
    body = json.dumps({"question": "感冒了需要吃抗生素吗", "top_k": 8}, ensure_ascii=False).encode()
    with server_process(corpus_index.path, tmp_path / "server.log", env) as (base, proc):
        url = urlsplit(base)
        with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
            sock.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            time.sleep(1.0)  # the server has read the headers: the request is open
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # the server is shutting down, waiting for this connection
            sock.sendall(body[10:])
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        # uvicorn re-raises the signal once it has shut down gracefully, so the exit status says SIGTERM.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:500]
    assert b"connection: close" in head.lower()  # no keep-alive past shutdown
    if b"transfer-encoding: chunked" in head.lower():
        payload = b"".join(payload.split(b"\r\n")[1::2])
    assert json.loads(payload)["answer"]
    log = (tmp_path / "server.log").read_text()
    assert "Waiting for connections to close" in log, log
