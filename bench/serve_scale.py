"""Serving at scale on one box: ``chimed-rag serve --workers N`` under 16 and 64 concurrent clients.

Per worker count: throughput, p50/p99 and status counts (200, 503 busy, 429, errors) of /v1/search and
/v1/ask; RSS and PSS of every worker process (PSS, from /proc/PID/smaps_rollup, splits shared pages between
the processes that map them: the honest per-worker figure when the index is memory-mapped); and the
memory-growth check: RSS after each of 10 runs of mixed /v1/ask + /v1/search load at 16 clients (it
plateaus when RSS after run 10 is within 5 % of RSS after run 2). ``--compare-mmap N`` starts N workers
once more with ``CHIMED_RAG_INDEX_MMAP=false`` to show what the mapping saves (vs the same warm-up).
``--index-memory N`` (no server, no model): N processes each open the index, mapped and not, and search it
once; their RSS/PSS is what the index itself costs per worker. ``--versus-langchain``
measures the default configuration over HTTP (hybrid /v1/search p50, one client, each held-apart dev query
once, no query-cache hits) against the LangChain ensemble in this process, interleaved query by query.

Every server runs on the default settings (encoder "auto", default backpressure) except the extractive
generator and no access log (bench/http_load.py ``start_server``).

    python -m bench.serve_scale --index DIR [--workers 1 2 4] [--growth-workers 1 2] [--seconds 4]
        [--growth-seconds 20] [--compare-mmap] [--versus-langchain cmeie-qa] [--out bench/results/X.json]
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import load_dataset, machine_info, percentiles
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


def mixed(base: str, texts: list[str], seconds: float, clients: int) -> dict[str, Any]:
    """Half the clients on /v1/ask, half on /v1/search, at the same time."""
    out: dict[str, Any] = {}
    runs = [threading.Thread(target=lambda r=r, p=p, k=k: out.__setitem__(r, load(base, p, k, texts, seconds,
                                                                                    clients // 2)))
            for r, p, k in (("ask", "/v1/ask", "question"), ("search", "/v1/search", "query"))]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    return out


def serving(proc: psutil.Process) -> list[psutil.Process]:
    """The processes that serve: the workers under uvicorn's supervisor, or the one process. A short-lived
    helper a library spawns may be a zombie for a moment (a 4-worker start hit one): it is not a worker."""
    workers = []
    for child in proc.children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                workers.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return workers or [proc]


def memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS (shared pages divided among their mappers) from the kernel's own rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])  # kB
    return {"rss_mb": round(fields["Rss"] / 1024, 1), "pss_mb": round(fields["Pss"] / 1024, 1),
            "shared_mb": round((fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0)) / 1024, 1)}


def worker_memory(proc: psutil.Process) -> list[dict[str, float]]:
    return [memory_mb(p.pid) for p in serving(proc)]


def total(memory: list[dict[str, float]], key: str) -> float:
    return round(sum(m[key] for m in memory), 1)


def started(index: Path, workers: int, env: dict[str, str] | None = None) -> tuple[Any, str, psutil.Process]:
    # N workers load N encoders at once: on a loaded 2-core box that takes minutes.
    server, base = start_server(index, "auto", workers=workers, timeout_s=180 + 240 * workers,
                                extra_env={"CHIMED_RAG_AUDIT_SECRET": "bench"} | (env or {}))
    return server, base, psutil.Process(server.pid)


def warm_up(base: str, workers: int, texts: list[str]) -> None:
    # Connections are spread over the workers by the kernel: enough of them reach every worker.
    load(base, "/v1/ask", "question", texts, 3, 2 * workers)
    load(base, "/v1/search", "query", texts, 2, 2 * workers)


def run(index: Path, workers: int, clients: list[int], seconds: float, growth_runs: int,
        growth_seconds: float) -> dict[str, Any]:
    server, base, proc = started(index, workers)
    texts = questions()
    try:
        warm_up(base, workers, texts)
        pids = {p.pid for p in serving(proc)}
        out: dict[str, Any] = {"workers": workers, "worker_pids": len(pids),
                               "memory_after_warmup": worker_memory(proc)}
        for n in clients:
            out[f"search_{n}"] = load(base, "/v1/search", "query", texts, seconds, n)
            out[f"ask_{n}"] = load(base, "/v1/ask", "question", texts, seconds, n)
        if growth_runs:
            growth, statuses = [], Counter[str]()
            for _ in range(growth_runs):
                result = mixed(base, texts, growth_seconds, 16)
                for part in result.values():
                    statuses.update(part["statuses"])
                memory = worker_memory(proc)
                growth.append({"rss_mb": total(memory, "rss_mb"), "pss_mb": total(memory, "pss_mb")})
            out["growth"] = {"runs": growth_runs, "seconds_each": growth_seconds, "clients": 16,
                             "total_per_run": growth, "statuses": dict(statuses),
                             "rss_run10_vs_run2": round(growth[-1]["rss_mb"] / growth[1]["rss_mb"] - 1, 4)
                             if growth_runs >= 2 else None}
        out["memory_at_end"] = worker_memory(proc)
        out["same_workers_at_end"] = {p.pid for p in serving(proc)} == pids  # none crashed and was replaced
        return out
    finally:
        server.terminate()
        server.wait(timeout=60)


def unmapped_memory(index: Path, workers: int) -> dict[str, Any]:
    """Memory per worker after the same warm-up with ``CHIMED_RAG_INDEX_MMAP=false`` (each worker loads its
    own copy of the vectors and the BM25 matrix), to set beside the mapped default of :func:`run`."""
    server, base, proc = started(index, workers, {"CHIMED_RAG_INDEX_MMAP": "false"})
    try:
        warm_up(base, workers, questions())
        memory = worker_memory(proc)
        return {"workers": workers, "per_worker": memory, "total_rss_mb": total(memory, "rss_mb"),
                "total_pss_mb": total(memory, "pss_mb")}
    finally:
        server.terminate()
        server.wait(timeout=60)


def _open_and_search(index: str, mmap: bool, ready: Any, done: Any) -> None:
    import numpy as np

    from indexer.index_dir import open_index

    loaded = open_index(index, verify="full", mmap=mmap)
    loaded.dense.search(np.ones((1, int(loaded.manifest["embedding"]["dimension"])), dtype=np.float32), 10)
    loaded.sparse.search(loaded.analyzer.tokenize("高血压吃什么药"), 10)
    ready.set()
    done.wait()


def index_memory(index: Path, processes: int) -> dict[str, Any]:
    """What the index alone costs per process, mapped and loaded (no encoder, no server)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out: dict[str, Any] = {"processes": processes}
    for mmap in (True, False):
        done = ctx.Event()
        ready = [ctx.Event() for _ in range(processes)]
        procs = [ctx.Process(target=_open_and_search, args=(str(index), mmap, r, done)) for r in ready]
        for p in procs:
            p.start()
        for r in ready:
            r.wait(600)
        memory = [memory_mb(p.pid) for p in procs]  # type: ignore[arg-type]
        done.set()
        for p in procs:
            p.join(60)
        out[f"mmap_{str(mmap).lower()}"] = {"per_process": memory, "total_pss_mb": total(memory, "pss_mb"),
                                            "total_rss_mb": total(memory, "rss_mb")}
    out["pss_saved_mb"] = round(out["mmap_false"]["total_pss_mb"] - out["mmap_true"]["total_pss_mb"], 1)
    return out


def versus_langchain(index_dir: Path, dataset: str, n_queries: int) -> dict[str, Any]:
    """Hybrid /v1/search p50 over HTTP (default settings) vs the LangChain ensemble in-process."""
    from bench.langchain_pipeline import LangChainEnsemble, embeddings
    from indexer.chunking import index_text
    from indexer.embedding import resolve_model_path
    from indexer.index_dir import open_index
    from indexer.stores import FaissStore, chunk_key
    from rag.settings import Settings

    index = open_index(index_dir)
    texts = [index_text(p, True) for p in index.passages]
    # LangChain's FAISS over this index's own passage vectors (FAISS.from_embeddings): its query path is
    # what is timed, and re-embedding 8,000 passages with torch would only cost minutes of the run.
    from langchain_community.vectorstores import FAISS

    assert isinstance(index.dense, FaissStore)
    keys, vectors = index.dense.vectors()
    row_of = {k: i for i, k in enumerate(keys.tolist())}
    rows = [row_of[chunk_key(p.chunk_id)] for p in index.passages]
    settings = Settings()
    folder = resolve_model_path(settings.embedding_model, settings.cache_dir)
    store = FAISS.from_embeddings(list(zip(texts, vectors[rows].tolist())), embeddings(folder),
                                  metadatas=[{"row": i} for i in range(len(texts))])
    lc = LangChainEnsemble(store, texts, index.passages, k=10).view("hybrid")
    pool = list(dict.fromkeys(load_dataset(dataset).all_queries))
    random.Random(0).shuffle(pool)
    warm, timed = pool[:5], pool[5:5 + n_queries]
    server, base = start_server(index_dir, "auto", extra_env={"CHIMED_RAG_AUDIT_SECRET": "bench"})
    ours: list[float] = []
    theirs: list[float] = []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            described = client.get("/v1/index").json()

            def search(q: str) -> None:
                reply = client.post("/v1/search", json={"query": q, "mode": "hybrid", "top_k": 10})
                reply.raise_for_status()

            for q in warm:
                search(q)
                lc.search(q, 10)
            for q in timed:  # interleaved: load drift on this shared box hits both alike
                start = time.perf_counter()
                search(q)
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                lc.search(q, 10)
                theirs.append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=60)
    http, langchain = percentiles(ours), percentiles(theirs)
    return {"dataset": dataset, "chunks": len(texts), "queries": len(timed),
            "server_embedding": described.get("embedding"), "ours_http_hybrid": http,
            "langchain_inprocess_hybrid": langchain,
            "ratio_p50": round(http["p50_ms"] / langchain["p50_ms"], 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--growth-workers", type=int, nargs="*", default=[1, 2],
                   help="worker counts that also get the 10-run memory-growth check")
    p.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--growth-runs", type=int, default=10)
    p.add_argument("--growth-seconds", type=float, default=20.0)
    p.add_argument("--compare-mmap", type=int, default=0, metavar="WORKERS",
                   help="also start WORKERS workers with and without the mapped index (0: skip)")
    p.add_argument("--index-memory", type=int, default=0, metavar="PROCESSES")
    p.add_argument("--versus-langchain", metavar="DATASET")
    p.add_argument("--langchain-queries", type=int, default=300)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    began = time.perf_counter()
    results: dict[str, Any] = {"machine": machine_info(), "index": args.index.name, "args": vars(args) | {
        "index": str(args.index), "out": str(args.out)}}
    if args.index_memory:
        results["index_memory"] = index_memory(args.index, args.index_memory)
    if args.versus_langchain:
        results["versus_langchain"] = versus_langchain(args.index, args.versus_langchain, args.langchain_queries)
    results["scale"] = []
    for w in (w for w in args.workers if w > 0):
        results["scale"].append(run(args.index, w, args.clients, args.seconds,
                                    args.growth_runs if w in args.growth_workers else 0, args.growth_seconds))
        if args.out:  # what is done survives a later part that fails
            args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.compare_mmap:
        mapped = next((r["memory_after_warmup"] for r in results["scale"] if r["workers"] == args.compare_mmap), [])
        unmapped = unmapped_memory(args.index, args.compare_mmap)
        results["mmap"] = {"mapped_total_pss_mb": total(mapped, "pss_mb"), "unmapped": unmapped,
                           "pss_saved_mb": round(unmapped["total_pss_mb"] - total(mapped, "pss_mb"), 1)}
    results["total_s"] = round(time.perf_counter() - began, 1)
    text = json.dumps(results, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
