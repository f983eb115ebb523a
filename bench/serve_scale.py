"""Serving at scale on one box: ``chimed-rag serve --workers N`` under 16 and 64 concurrent clients.

For 1 and 2 workers: throughput, p50/p99 and status counts (200, 503 busy, 429, errors) of /v1/search and
/v1/ask, RSS per worker process after warm-up, and the memory-growth check: RSS after each of 10 runs of
/v1/ask under load (it plateaus when RSS after run 10 is within 5 % of RSS after run 2).

    python -m bench.serve_scale --index indexes/default [--seconds 5] [--workers 1 2] [--clients 16 64]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import percentiles
from bench.http_load import start_server

QUESTIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "coverage"


def questions() -> list[str]:
    texts = [json.loads(line)["question"] for path in sorted(QUESTIONS.glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts or ["感冒怎么处理？"]


def load(base: str, path: str, key: str, texts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    """``clients`` threads, each with its own keep-alive connection, for ``seconds``; every status counted."""
    samples: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            i = offset
            while time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    status = str(client.post(path, json={key: texts[i % len(texts)]}).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    statuses[status] += 1
                    if status == "200":
                        samples.append(elapsed)
                i += clients

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    stats = percentiles(samples) if samples else {"n": 0}
    return stats | {"ok_per_s": round(len(samples) / wall, 2), "statuses": dict(statuses), "clients": clients}


def worker_rss_mb(proc: psutil.Process) -> list[float]:
    """RSS of each process that serves: the workers under uvicorn's supervisor, or the one process."""
    workers = [c for c in proc.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
    return [round(p.memory_info().rss / 2**20, 1) for p in (workers or [proc])]


def run(index: Path, workers: int, clients: list[int], seconds: float, growth_runs: int) -> dict[str, Any]:
    env = {"CHIMED_RAG_AUDIT_SECRET": "bench", "CHIMED_RAG_MAX_CONCURRENT": "8"}
    server, base = start_server(index, "torch", workers=workers, extra_env=env)
    proc = psutil.Process(server.pid)
    texts = questions()
    try:
        load(base, "/v1/ask", "question", texts, 2, 2)  # warm-up every worker a little
        out: dict[str, Any] = {"workers": workers, "rss_mb_after_warmup": worker_rss_mb(proc)}
        for n in clients:
            out[f"search_{n}"] = load(base, "/v1/search", "query", texts, seconds, n)
            out[f"ask_{n}"] = load(base, "/v1/ask", "question", texts, seconds, n)
        growth = []
        for _ in range(growth_runs):
            load(base, "/v1/ask", "question", texts, seconds, 16)
            growth.append(sum(worker_rss_mb(proc)))
        out["rss_total_mb_per_run"] = growth
        if len(growth) >= 2:
            out["growth_run10_vs_run2"] = round(growth[-1] / growth[1] - 1, 4)
        out["rss_mb_at_end"] = worker_rss_mb(proc)
        return out
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--growth-runs", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    results = [run(args.index, w, args.clients, args.seconds, args.growth_runs) for w in args.workers]
    text = json.dumps(results, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
