"""Scale (d): N synthetic unit vectors of the model's dimension (clustered, like real embeddings) in
the approximate FAISS types the indexer offers; build time, bytes per vector, query latency, recall@10."""

from __future__ import annotations

import time
from typing import Any

import faiss
import numpy as np

from bench.common import peak_rss, percentiles
from indexer.dense_index import FaissConfig, build_faiss

DIMENSION = 384


def synthetic(n: int, dim: int, seed: int, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        rows = min(step, n - start)
        out[start : start + rows] = centers[rng.integers(0, clusters, rows)] + \
            0.6 * rng.standard_normal((rows, dim), dtype=np.float32)
    faiss.normalize_L2(out)
    return out


def run_scale(n: int, queries: int, configs: dict[str, FaissConfig] | None = None) -> dict[str, Any]:
    vectors = synthetic(n, DIMENSION, seed=1)
    probe = synthetic(queries, DIMENSION, seed=2)
    exact = faiss.IndexFlatIP(DIMENSION)
    exact.add(vectors)
    _, truth = exact.search(probe, 10)
    configs = configs or {"hnsw": FaissConfig(type="hnsw"), "ivfpq": FaissConfig(type="ivfpq", pq_m=48)}
    out: dict[str, Any] = {"vectors": n, "dimension": DIMENSION, "queries": queries}
    for name, config in configs.items():
        stats: dict[str, Any] = {}
        with peak_rss(stats):
            start = time.perf_counter()
            index = build_faiss(vectors, config)
            stats["build_s"] = round(time.perf_counter() - start, 2)
        # Serialized size is what the index holds per vector (codes + graph/lists), excluding the trainer.
        stats["code_bytes"] = config.pq_m if config.type == "ivfpq" else DIMENSION * 4
        stats["bytes_per_vector"] = round(faiss.serialize_index(index).nbytes / n, 1)
        samples, found = [], []
        for row in probe:
            t = time.perf_counter()
            _, ids = index.search(row[None, :], 10)
            samples.append(time.perf_counter() - t)
            found.append(ids[0])
        stats["recall@10"] = round(float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])), 4)
        stats["latency"] = percentiles(samples)
        stats["config"] = {k: v for k, v in vars(config).items()}
        out[name] = stats
        del index
    return out
