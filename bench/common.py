"""Shared helpers: datasets, machine info, percentiles, peak-memory sampling."""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
RESULTS = ROOT / "bench" / "results"
DATASETS = ("cmeie-qa", "kuake-qtr", "toyhom-qa")
# The fast encoder the suite measures next to torch fp32 (indexer/openvino_backend.py).
FAST_BACKEND = "openvino-int8"


@dataclass(frozen=True)
class Dataset:
    name: str
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    all_queries: list[str]  # every dev query (the latency pool), also those without a kept document


def load_dataset(name: str, max_docs: int | None = None, work: Path | None = None,
                 max_queries: int | None = None) -> Dataset:
    data = _load_dataset(name, max_docs, work)
    if max_queries:
        keep = list(data.queries)[:max_queries]
        data = Dataset(data.name, data.corpus, {q: data.queries[q] for q in keep},
                       {q: data.qrels[q] for q in keep}, data.all_queries)
    return data


def _load_dataset(name: str, max_docs: int | None = None, work: Path | None = None) -> Dataset:
    """A shared dev set, read at run time; ``max_docs`` keeps the first N documents (and their queries)."""
    from rag.evaluation import read_qrels, read_queries

    folder = SHARED_DATA / name
    if not folder.is_dir():
        raise SystemExit(f"shared dev set {name!r} not found under {SHARED_DATA}")
    queries = read_queries(folder / "dev" / "queries.jsonl")
    qrels = read_qrels(folder / "dev" / "qrels.tsv")
    corpus = folder / "corpus.jsonl"
    if max_docs:
        assert work is not None
        lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()][:max_docs]
        kept = {str(json.loads(line)["id"]) for line in lines}
        corpus = work / f"{name}-{max_docs}.jsonl"  # a temporary subset, never written into the repo
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        qrels = {q: {d: s for d, s in r.items() if d in kept} for q, r in qrels.items()}
        qrels = {q: r for q, r in qrels.items() if r}
    return Dataset(name, corpus, {q: t for q, t in queries.items() if q in qrels}, qrels, list(queries.values()))


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": at(0.95),
            "p99_ms": at(0.99), "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


@contextmanager
def peak_rss(result: dict[str, float], interval_s: float = 0.05) -> Iterator[None]:
    """Samples this process's RSS while the block runs; stores the peak growth over the start in MB."""
    process = psutil.Process()
    start = process.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval_s):
            peak[0] = max(peak[0], process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        result["peak_rss_mb"] = round(peak[0] / 2**20, 1)
        result["peak_rss_growth_mb"] = round((peak[0] - start) / 2**20, 1)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start
