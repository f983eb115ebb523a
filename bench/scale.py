"""Scale (d): N synthetic chunks in the approximate FAISS types the indexer offers and in BM25.

Vectors: when real passage embeddings are given (the dev indexes of the retrieval part), each synthetic
vector mixes two random real ones plus a little noise, so the set keeps the narrow cone and the cluster
structure of real e5 embeddings; queries are real query embeddings. Without them (retrieval skipped,
smoke), clustered random unit vectors stand in. Measured: build time, bytes per vector, single-query
p50/p99 and recall@10 against exact search. BM25: real chunk texts, analysed once and repeated to N rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from bench.common import peak_rss, percentiles
from indexer.analyzer import ChineseAnalyzer
from indexer.bm25_index import BM25Index
from indexer.build import BuildConfig
from indexer.dense_index import FaissConfig, build_faiss
from indexer.lexicon import load_lexicon

DIMENSION = 384
# HNSW's construction beam is lowered from the indexer default (200) at this size: on two cores it
# would take hours; 40 is faiss' own default.
SCALE_CONFIGS = {
    "hnsw": FaissConfig(type="hnsw", hnsw_ef_construction=40),
    "ivfpq48": FaissConfig(type="ivfpq", pq_m=48),
    "ivfpq64": FaissConfig(type="ivfpq", pq_m=64),
}


def clustered(n: int, dim: int, seed: int, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim), dtype=np.float32)
    return _fill(n, dim, lambda rows: centers[rng.integers(0, clusters, rows)]
                 + 0.6 * rng.standard_normal((rows, dim), dtype=np.float32))


def from_real(n: int, real: np.ndarray, seed: int, noise: float = 0.01) -> np.ndarray:
    """Each row: a random real vector moved up to half way towards another, plus Gaussian noise."""
    rng = np.random.default_rng(seed)

    def block(rows: int) -> np.ndarray:
        a, b = real[rng.integers(0, len(real), rows)], real[rng.integers(0, len(real), rows)]
        w = rng.uniform(0.0, 0.5, (rows, 1)).astype(np.float32)
        return (1 - w) * a + w * b + noise * rng.standard_normal((rows, real.shape[1]), dtype=np.float32)

    return _fill(n, real.shape[1], block)


def _fill(n: int, dim: int, block: Any, step: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, step):
        rows = min(step, n - start)
        out[start : start + rows] = block(rows)
    faiss.normalize_L2(out)
    return out


def run_scale(n: int, queries: int, real_vectors: np.ndarray | None = None,
              real_queries: np.ndarray | None = None, texts: Sequence[str] = (),
              query_texts: Sequence[str] = (), configs: dict[str, FaissConfig] | None = None) -> dict[str, Any]:
    if real_vectors is not None and real_queries is not None:
        vectors, probe = from_real(n, real_vectors, seed=1), np.ascontiguousarray(real_queries[:queries])
        source = f"mix of {len(real_vectors)} real passage embeddings; {len(probe)} real query embeddings"
    else:
        vectors, probe = clustered(n, DIMENSION, seed=1), clustered(queries, DIMENSION, seed=2)
        source = "clustered random unit vectors (no real embeddings given)"
    out: dict[str, Any] = {"vectors": n, "dimension": vectors.shape[1], "queries": len(probe), "source": source}
    start = time.perf_counter()
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(probe, 10)
    out["exact_search_s"] = round(time.perf_counter() - start, 2)
    del exact
    for name, config in (configs or SCALE_CONFIGS).items():
        out[name] = _dense_part(vectors, probe, truth, config)
    if texts:
        out["bm25"] = bm25_part(n, texts, query_texts or texts[:queries])
    return out


def _dense_part(vectors: np.ndarray, probe: np.ndarray, truth: np.ndarray, config: FaissConfig) -> dict:
    stats: dict[str, Any] = {}
    with peak_rss(stats):
        start = time.perf_counter()
        index = build_faiss(vectors, config)
        stats["build_s"] = round(time.perf_counter() - start, 2)
    n, dim = vectors.shape
    stats["code_bytes"] = config.pq_m if config.type == "ivfpq" else dim * 4
    # Serialized size is what the index holds per vector: codes + ids + graph links or list overhead.
    stats["bytes_per_vector"] = round(faiss.serialize_index(index).nbytes / n, 1)
    samples, found = [], []
    for row in probe:
        t = time.perf_counter()
        _, ids = index.search(row[None, :], 10)
        samples.append(time.perf_counter() - t)
        found.append(ids[0])
    stats["recall@10"] = round(float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])), 4)
    stats["latency"] = percentiles(samples)
    stats["config"] = dict(vars(config))
    return stats


def bm25_part(n: int, texts: Sequence[str], query_texts: Sequence[str]) -> dict[str, Any]:
    """BM25 over n rows: the real texts' tokens repeated (analysed once: jieba is the slow part)."""
    config = BuildConfig()
    analyzer = ChineseAnalyzer(config.analyzer, load_lexicon(config.user_dict, config.synonyms))
    start = time.perf_counter()
    unique = [analyzer.tokenize(t) for t in texts]
    analyse_s = time.perf_counter() - start
    rows = [unique[i % len(unique)] for i in range(n)]
    stats: dict[str, Any] = {"rows": n, "distinct_texts": len(unique), "analyse_distinct_s": round(analyse_s, 2)}
    with peak_rss(stats):
        start = time.perf_counter()
        index = BM25Index.build(rows)
        stats["build_s"] = round(time.perf_counter() - start, 2)
    del rows
    samples = []
    for q in query_texts:
        t = time.perf_counter()
        scores = index.scores(analyzer.tokenize_query(q))
        np.argpartition(-scores, 9)[:10]  # the top-k step a retriever does, timed with the rest
        samples.append(time.perf_counter() - t)
    stats["latency"] = percentiles(samples)
    return stats
