"""HTTP (e): a real ``chimed-rag serve`` process on loopback, loaded from this (separate) process for a
bounded time by a few client threads; requests/s, p50/p99, errors for /v1/search and /v1/ask."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import percentiles


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index_dir: Path, backend: str, timeout_s: float = 180, workers: int = 1,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = os.environ | {"CHIMED_RAG_EMBEDDING_BACKEND": backend, "CHIMED_RAG_GENERATOR": "extractive",
                        "CHIMED_RAG_ACCESS_LOG": "false"} | (extra_env or {})
    cmd = [sys.executable, "-m", "api.cli", "serve", "--index", str(index_dir), "--no-build",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("server did not become healthy in time")


def load(base: str, path: str, key: str, texts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    samples: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            i = offset
            while time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    ok = client.post(path, json={key: texts[i % len(texts)]}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        samples.append(elapsed)
                    else:
                        errors[0] += 1
                i += clients

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    stats = percentiles(samples) if samples else {"n": 0}
    return stats | {"requests_per_s": round(len(samples) / wall, 2), "errors": errors[0], "clients": clients,
                    "seconds": round(wall, 1)}


def run_http(index_dir: Path, backend: str, texts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    proc, base = start_server(index_dir, backend)
    try:
        load(base, "/v1/search", "query", ["预热"], 1, 1)  # warm-up
        # Separate question halves, so /v1/ask does not hit the query vectors /v1/search cached; a run
        # longer than one pass over its half repeats questions (served from the server's query cache).
        half = len(texts) // 2
        return {"backend": backend, "distinct_texts": half,
                "search": load(base, "/v1/search", "query", texts[:half], seconds, clients),
                "ask": load(base, "/v1/ask", "question", texts[half:], seconds, clients)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
