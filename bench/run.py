"""ChiMed-RAG benchmark suite: ``python -m bench.run`` (``make bench``).

Parts: retrieval quality + index build + query latency against the LangChain ensemble (per dev set),
HTTP load on loopback, the GPU generation part (skipped without CUDA) and, with ``--scale``, 1M
synthetic vectors in HNSW and IVF-PQ. Writes ``bench/results/<name>.json`` and the table in
``bench/README.md``. ``--smoke`` runs everything small (CI: tests/bench/test_smoke.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import DATASETS, FAST_BACKEND, RESULTS, ROOT, load_dataset, machine_info
from bench.report import write_readme

log = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes for CI (well under 2 minutes)")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, help="dev sets (default: all three)")
    p.add_argument("--max-docs", type=int, help="index only the first N documents of each dev set")
    p.add_argument("--max-queries", type=int, help="evaluate quality on the first N dev queries only")
    p.add_argument("--latency-queries", type=int, default=500, help="timed queries on the first dev set")
    p.add_argument("--no-reuse", action="store_true", help="rebuild fp32 indexes instead of reusing the test cache")
    p.add_argument("--scale", action="store_true", help="also run the 1M-vector HNSW / IVF-PQ part")
    p.add_argument("--scale-vectors", type=int, default=1_000_000)
    p.add_argument("--http-seconds", type=float, default=20.0)
    p.add_argument("--http-clients", type=int, default=4)
    p.add_argument("--skip", nargs="*", default=[], choices=["retrieval", "http", "gpu"])
    p.add_argument("--gpu-model", type=Path, help="local LLaMA folder (default: the converted SmolLM2)")
    p.add_argument("--name", help="results file name (default: smoke or full)")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    args = p.parse_args(argv)
    if args.smoke:
        args.datasets = args.datasets or ["cmeie-qa"]
        args.max_docs = args.max_docs or 60
        args.max_queries = args.max_queries or 30
        args.latency_queries = min(args.latency_queries, 20)
        args.scale_vectors = min(args.scale_vectors, 5_000)
        args.http_seconds = min(args.http_seconds, 3.0)
        args.http_clients = min(args.http_clients, 2)
    args.datasets = args.datasets or list(DATASETS)
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse(argv)
    results: dict[str, Any] = {"machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chimed-bench-") as tmp:
        work = Path(tmp)
        first_index: Path | None = None
        keep: dict[str, list] = {"vectors": [], "texts": [], "queries": [], "backend": [FAST_BACKEND]}
        if "retrieval" not in args.skip:
            from bench.retrieval import run_dataset

            results["retrieval"] = {}
            for i, name in enumerate(args.datasets):
                log.info("retrieval part: %s", name)
                dataset = load_dataset(name, args.max_docs, work, args.max_queries)
                results["retrieval"][name] = run_dataset(
                    dataset, work, args.latency_queries if i == 0 else 0, reuse=not args.no_reuse,
                    with_build=True, keep=keep)
                keep["queries"].extend(dataset.all_queries)
                if first_index is None:
                    first_index = work / f"{name}-int8"
        if "http" not in args.skip:
            from bench.http_load import run_http

            log.info("http part")
            index = first_index if first_index and first_index.exists() else _small_index(work)
            dataset = load_dataset(args.datasets[0], args.max_docs, work)
            texts = dataset.all_queries[:400]
            results["http"] = run_http(index, FAST_BACKEND, texts, args.http_seconds, args.http_clients)
        if "gpu" not in args.skip:
            from bench.gpu import run_gpu
            from rag.settings import Settings

            results["gpu"] = run_gpu(args.gpu_model or Settings().cache_dir / "smollm2-135m-instruct-hf")
        if args.scale or args.smoke:
            from bench.scale import run_scale

            if not keep["vectors"]:
                _cached_dev_data(args, keep)
            log.info("scale part: %d vectors", args.scale_vectors)
            results["scale"] = run_scale(args.scale_vectors, queries=200 if args.smoke else 1000,
                                         **_real_data(keep, 200 if args.smoke else 1000))
    results["total_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name or ('smoke' if args.smoke else 'full')}.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"results: {out.relative_to(ROOT)}")
    if not args.no_readme:
        write_readme(results, ROOT / "bench" / "README.md", out.name)
    return 0


def _real_data(keep: dict[str, list], queries: int) -> dict[str, Any]:
    """Real passage vectors, query embeddings (the int8 encoder that built them) and texts for --scale."""
    if not keep["vectors"]:
        return {}
    import random

    import numpy as np

    from bench.retrieval import embedder

    pool = list(dict.fromkeys(keep["queries"]))
    random.Random(0).shuffle(pool)
    pool = pool[:queries]
    queries_vectors = embedder(keep["backend"][0]).embed_queries(pool)  # the encoder that built the vectors
    return {"real_vectors": np.concatenate(keep["vectors"]), "real_queries": queries_vectors,
            "texts": keep["texts"], "query_texts": pool}


def _cached_dev_data(args: argparse.Namespace, keep: dict[str, list]) -> None:
    """With the retrieval part skipped: the fp32 dev indexes the test suite cached, where present."""
    from bench.retrieval import _test_cache_index, embedder
    from indexer.build import BuildConfig
    from indexer.index_dir import open_index

    fp32 = embedder("torch")
    for name in args.datasets:
        dataset = load_dataset(name)
        cached = _test_cache_index(dataset, fp32, BuildConfig(skip_empty=True))
        if not (cached / "manifest.json").exists():
            continue
        index = open_index(cached)
        keep["vectors"].append(index.dense.vectors()[1])
        keep["texts"].extend(p.text for p in index.passages)
        keep["queries"].extend(dataset.all_queries)
        keep["backend"] = ["torch"]


def _small_index(work: Path) -> Path:
    """An index of the shipped corpus's first documents for the HTTP part when retrieval is skipped."""
    from bench.retrieval import embedder
    from indexer.build import build_index
    from rag.settings import Settings

    out = work / "http-index"
    docs = sorted((ROOT / "corpus" / "docs").rglob("*.md"))[:20]
    build_index(docs, out, embedder(FAST_BACKEND), Settings().build_config())
    return out


if __name__ == "__main__":
    sys.exit(main())
