"""Quality (a), build speed (b) and query latency (c): ours (torch fp32 and an int8 ONNX Runtime encoder)
next to the LangChain ensemble, in one process, on the same chunk texts of one dev set."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import FAST_BACKEND, ROOT, Dataset, peak_rss, percentiles
from bench.langchain_pipeline import LangChainEnsemble, build_faiss
from indexer.build import BuildConfig, build_index, index_text
from indexer.chunking import Chunker
from indexer.embedding import SentenceTransformerEmbedder, resolve_model_path
from indexer.index_dir import LoadedIndex, open_index
from indexer.loaders import load_corpus
from rag.evaluation import RetrievalEvaluator
from rag.retrievers import HybridRetriever, make_retrievers
from rag.settings import Settings

log = logging.getLogger("bench")


def embedder(backend: str, threads: int | None = None) -> SentenceTransformerEmbedder:
    # The query cache spares re-encoding between quality runs; latency clears it before every query.
    config = replace(Settings().embedder_config(), backend=backend, fallback=False, query_cache_size=8192,
                     threads=threads)
    return SentenceTransformerEmbedder(config)


def _test_cache_index(dataset: Dataset, emb: SentenceTransformerEmbedder, config: BuildConfig) -> Path:
    """The dev index the test suite caches (tests/conftest.py ``cached_index``), same key scheme."""
    from tests.conftest import INDEX_CONTENT_CODE, files_fingerprint

    code = b"".join((ROOT / "indexer" / f).read_bytes() for f in INDEX_CONTENT_CODE)
    key = hashlib.sha256(repr((config, emb.describe())).encode() + code).hexdigest()[:8]
    return ROOT / ".cache" / "test-indexes" / f"{dataset.name}-{files_fingerprint([dataset.corpus])}-{key}"


def build_ours(dataset: Dataset, emb: SentenceTransformerEmbedder, out: Path, reuse: bool) -> tuple[LoadedIndex, dict]:
    config = BuildConfig(skip_empty=True)
    cached = _test_cache_index(dataset, emb, config)
    if reuse and (cached / "manifest.json").exists():
        log.info("%s: reusing the cached dev index %s", dataset.name, cached.name)
        index = open_index(cached)
        return index, {"reused": str(cached.name), "chunks": index.manifest["counts"]["chunks"]}
    stats: dict[str, Any] = {}
    with peak_rss(stats):
        start = time.perf_counter()
        manifest = build_index([dataset.corpus], out, emb, config)
        seconds = time.perf_counter() - start
    chunks = manifest["counts"]["chunks"]
    stats |= {"seconds": round(seconds, 2), "chunks": chunks, "passages_per_s": round(chunks / seconds, 2),
              "embed_s": manifest["timings"]["embed_s"]}
    return open_index(out), stats


def build_langchain(texts: list[str], folder: str) -> tuple[Any, dict]:
    stats: dict[str, Any] = {}
    with peak_rss(stats):
        start = time.perf_counter()
        store = build_faiss(texts, folder)
        seconds = time.perf_counter() - start
    return store, stats | {"seconds": round(seconds, 2), "chunks": len(texts),
                           "passages_per_s": round(len(texts) / seconds, 2)}


def latency(runners: dict[str, Any], queries: list[str], before: Any, warmup: int = 5) -> dict[str, dict]:
    """Each query goes through every runner back to back (interleaved), so load drift hits all alike;
    ``before`` (untimed) runs ahead of each call, to empty the query caches."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for q in queries[:warmup]:
        for run in runners.values():
            run(q)
    for q in queries[warmup:]:
        for name, run in runners.items():
            before()
            start = time.perf_counter()
            run(q)
            samples[name].append(time.perf_counter() - start)
    return {name: percentiles(s) for name, s in samples.items()}


def run_dataset(dataset: Dataset, work: Path, latency_queries: int, reuse: bool, with_build: bool,
                keep: dict[str, list] | None = None) -> dict:
    """One dev set; ``keep`` (when given) collects the int8 passage vectors and chunk texts for --scale."""
    result: dict[str, Any] = {"dataset": dataset.name, "queries": len(dataset.queries)}
    fp32, fast = embedder("torch"), embedder(FAST_BACKEND)
    folder = resolve_model_path(fp32.config.model, fp32.config.cache_dir)
    documents = load_corpus([dataset.corpus], skip_empty=True)
    passages = Chunker(BuildConfig().chunker).run(documents)
    texts = [index_text(p, True) for p in passages]

    # Build: LangChain first, then ours with both encoders, in this process.
    clock = time.perf_counter()
    store, result["build_langchain"] = build_langchain(texts, folder)
    index32, result["build_ours_torch"] = build_ours(dataset, fp32, work / f"{dataset.name}-torch", reuse)
    index8, result["build_ours_int8"] = build_ours(dataset, fast, work / f"{dataset.name}-int8", False)
    if with_build and "passages_per_s" in result["build_ours_torch"]:
        result["build_ratio_torch_vs_langchain"] = round(
            result["build_ours_torch"]["passages_per_s"] / result["build_langchain"]["passages_per_s"], 2)
    result["build_ratio_int8_vs_langchain"] = round(
        result["build_ours_int8"]["passages_per_s"] / result["build_langchain"]["passages_per_s"], 2)

    result["seconds"] = {"builds": round(time.perf_counter() - clock, 1)}
    clock = time.perf_counter()
    if keep is not None:
        keep["vectors"].append(index8.dense.vectors()[1])
        keep["texts"].extend(texts)
    ours32 = make_retrievers(index32, fp32, Settings().hybrid_config())
    ours8 = make_retrievers(index8, fast, Settings().hybrid_config())
    lc = LangChainEnsemble(store, texts, index32.passages, k=100)
    evaluator = RetrievalEvaluator(dataset.queries, dataset.qrels, chunk_depth=100)
    quality: dict[str, dict] = {}
    for mode in ("bm25", "dense", "hybrid"):
        quality[f"ours-{mode}"] = evaluator.run(ours32[mode])
    for mode in ("dense", "hybrid"):
        quality[f"ours-int8-{mode}"] = evaluator.run(ours8[mode])
    for mode in ("bm25", "dense", "hybrid"):
        quality[f"langchain-{mode}"] = evaluator.run(lc.view(mode))
    result["quality"] = quality
    result["ndcg_retention_int8_hybrid"] = round(
        quality["ours-int8-hybrid"]["ndcg@10"] / max(quality["ours-hybrid"]["ndcg@10"], 1e-9), 4)
    result["seconds"]["quality"] = round(time.perf_counter() - clock, 1)

    if latency_queries:
        pool = list(dict.fromkeys(dataset.all_queries))
        random.Random(0).shuffle(pool)
        lc_hybrid = lc.view("hybrid")
        one = embedder(FAST_BACKEND, threads=1)  # thread setting: one intra-op thread vs onnxruntime's default
        ours8_1t = make_retrievers(index8, one, Settings().hybrid_config())
        h32, h8 = ours32["hybrid"], ours8["hybrid"]
        assert isinstance(h32, HybridRetriever) and isinstance(h8, HybridRetriever)
        runners = {
            "ours-bm25": lambda q: ours32["bm25"].search(q, 10),
            "ours-dense": lambda q: ours32["dense"].search(q, 10),
            "ours-hybrid": lambda q: h32.search(q, 10),
            "ours-int8-dense": lambda q: ours8["dense"].search(q, 10),
            "ours-int8-hybrid": lambda q: h8.search(q, 10),
            "ours-int8-hybrid-1thread": lambda q: ours8_1t["hybrid"].search(q, 10),
            "langchain-bm25": lambda q: lc.view("bm25").search(q, 10),
            "langchain-hybrid": lambda q: lc_hybrid.search(q, 10),
        }
        # LangChain's retrievers return k=100 for recall@100; latency uses k=10 as a service would.
        lc.bm25.k = 10
        lc.dense.search_kwargs = {"k": 10}
        def clear() -> None:
            for emb in (fp32, fast, one):
                emb.clear_query_cache()

        clock = time.perf_counter()
        lat = latency(runners, pool[: latency_queries + 5], clear)
        result["seconds"]["latency"] = round(time.perf_counter() - clock, 1)
        result["latency"] = lat
        base = lat["langchain-hybrid"]["p50_ms"]
        result["latency_ratio_p50_vs_langchain_hybrid"] = {
            name: round(v["p50_ms"] / base, 3) for name, v in lat.items() if name.startswith("ours")}
    return result
