"""Milvus vs FAISS + bm25s on the same data: hybrid query latency and throughput, ingest rate, per-vector cost.

    python -m bench.milvus --index DIR [--uri http://host:19530] [--queries 200] [--scale 1000000]

``DIR`` is a FAISS index (e.g. a dev-set index); it is copied into a Milvus collection with its own vectors
and tokens (nothing re-embedded), then the same queries run on both. Without ``--uri`` a Milvus Lite server
is started for the run. ``--scale N`` also ingests N synthetic chunks (the index's vectors, perturbed) to
measure the ingest rate and per-vector memory at that size, stopping after ``--scale-budget`` seconds and
reporting how far it got. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from indexer.build import copy_index, stored_vectors
from indexer.embedding import EmbedderConfig, SentenceTransformerEmbedder
from indexer.index_dir import LoadedIndex, open_index
from indexer.milvus_store import ChunkRecord, MilvusCollection
from indexer.store_config import MilvusConfig, StoreConfig
from indexer.types import Passage
from rag.retrievers import make_retrievers
from rag.settings import Settings


@contextmanager
def lite_server(folder: Path) -> Iterator[tuple[str, int]]:
    """A Milvus Lite gRPC server in its own process (its RSS is the engine's memory)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(folder / "data"),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def latency(run: Callable[[str], Any], queries: Sequence[str]) -> dict[str, float]:
    run(queries[0])  # warm-up
    times = []
    start = time.perf_counter()
    for query in queries:
        t = time.perf_counter()
        run(query)
        times.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - start
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "qps_one_client": round(len(queries) / wall, 1)}


def compare(faiss_index: LoadedIndex, milvus_index: LoadedIndex, queries: Sequence[str]) -> dict[str, Any]:
    embedder = SentenceTransformerEmbedder(EmbedderConfig(cache_dir=str(Settings().cache_dir)))
    for query in queries:  # warm the encoder on every query shape first: the first backend timed must not pay it
        embedder.embed_queries([query])
    out: dict[str, Any] = {}
    for name, index in (("faiss", faiss_index), ("milvus", milvus_index)):
        retrievers = make_retrievers(index, embedder, Settings().hybrid_config())
        out[name] = {mode: latency(lambda q, r=retrievers[mode]: r.search(q, 10), queries)
                     for mode in ("bm25", "dense", "hybrid")}
    return out


def scale_ingest(config: MilvusConfig, base: np.ndarray, total: int, budget: float, pid: int | None) -> dict[str, Any]:
    """Synthetic chunks (perturbed copies of real vectors) into a fresh collection, until done or out of time."""
    collection = MilvusCollection.create(config, base.shape[1], {"model": "synthetic", "dimension": base.shape[1]})
    rng = np.random.default_rng(0)
    before, start, done, batch = rss_mb(pid), time.perf_counter(), 0, 5000
    while done < total and time.perf_counter() - start < budget:
        n = min(batch, total - done)
        vectors = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.01, (n, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        records = [ChunkRecord(Passage(f"s{done + i}#0", f"s{done + i}", "", "合成文本" * 20, (0, 80)),
                               "合成 文本 __b合成", "v") for i in range(n)]
        collection.upsert(records, vectors)
        done += n
    collection.flush()
    seconds = time.perf_counter() - start
    after = rss_mb(pid)
    return {"target_chunks": total, "ingested": done, "seconds": round(seconds, 1),
            "rows_per_s": round(done / seconds, 1), "complete": done == total,
            "server_rss_mb_per_1k_rows": round((after - before) / done * 1000, 3) if after and before else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a FAISS index directory")
    parser.add_argument("--uri", help="a running Milvus (default: start Milvus Lite for the run)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scale", type=int, default=0, help="also ingest this many synthetic chunks")
    parser.add_argument("--scale-budget", type=float, default=180.0, help="seconds for the --scale run")
    args = parser.parse_args(argv)
    faiss_index = open_index(args.index)
    texts = [p.title or p.text[:30] for p in faiss_index.passages]
    queries = [texts[i] for i in np.random.default_rng(1).choice(len(texts), args.queries, replace=False)]
    with tempfile.TemporaryDirectory() as tmp, (lite_server(Path(tmp)) if not args.uri
                                                else _running(args.uri)) as (uri, pid):
        store = StoreConfig("milvus", MilvusConfig(uri=uri, collection="bench_milvus"))
        before, start = rss_mb(pid), time.perf_counter()
        copy_index(args.index, Path(tmp) / "index", store)
        ingest_s = time.perf_counter() - start
        after = rss_mb(pid)
        milvus_index = open_index(Path(tmp) / "index", store=store)
        n = len(faiss_index.passages)
        report: dict[str, Any] = {
            "engine": "milvus-lite (python -m milvus_lite server)" if not args.uri else args.uri,
            "chunks": n, "dimension": faiss_index.manifest["embedding"]["dimension"],
            "ingest": {"seconds": round(ingest_s, 1), "rows_per_s": round(n / ingest_s, 1)},
            "per_vector": {
                "faiss_flat_file_bytes": round((faiss_index.path / "dense.faiss").stat().st_size / n, 1),
                "milvus_server_rss_bytes": round((after - before) * 2**20 / n, 1) if after and before else None,
                "milvus_lite_disk_bytes": round(folder_mb(Path(tmp) / "data") * 2**20 / n, 1) if not args.uri else None,
                "row_text_bytes": round(sum(len(p.text.encode()) + len(p.title.encode()) for p in
                                            faiss_index.passages) / n, 1),
            },
            "latency": compare(faiss_index, milvus_index, queries),
        }
        if args.scale:
            base = stored_vectors(faiss_index, [p.chunk_id for p in faiss_index.passages])
            report["scale"] = scale_ingest(MilvusConfig(uri=uri, collection="bench_scale"), base, args.scale,
                                           args.scale_budget, pid)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


@contextmanager
def _running(uri: str) -> Iterator[tuple[str, int | None]]:
    yield uri, None


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
