"""Choose the hybrid fusion on split A of every dev half, report it on split B (issue 13 item 3).

Each dev half's queries are split by a hash of the query id (``split_of``); the BM25 and dense runs of the
cached dev indexes (tests/conftest.py) are computed once, then every fusion setting is replayed offline exactly
as ``HybridRetriever._fuse`` does it, collapsed to documents like ``RetrievalEvaluator``. The setting with the
best mean nDCG@10 over the three split-A sets is chosen; split B only reports it.

    PYTHONPATH=$PWD python -m bench.tune_fusion --out bench/results/fusion_tuning.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ranx import Qrels, Run, evaluate

from bench.common import ROOT, Dataset
from rag.evaluation import read_qrels, read_queries
from rag.fusion import FUSIONS

SETS = ("cmeie-qa", "kuake-qtr", "toyhom-qa")
DEPTH = 300  # RetrievalEvaluator's chunk depth: the hybrid then fuses max(top_k, candidates) = 300 per member
Runs = dict[str, dict[str, list[tuple[str, str, float]]]]  # qid -> member -> [(chunk_id, doc_id, score)]


def split_of(qid: str) -> str:
    """'A' (tuning) or 'B' (held apart), fixed by the query id alone."""
    return "A" if hashlib.sha256(qid.encode()).digest()[0] % 2 == 0 else "B"


def member_runs(name: str, cache_dir: Path, max_queries: int | None = None) -> Runs:
    queries = read_queries(ROOT.parent / "shared/data" / name / "dev/queries.jsonl")
    ids = list(queries)
    if max_queries and len(ids) > max_queries:  # a seeded sample, where the CPU cannot embed every query
        ids = sorted(random.Random(0).sample(ids, max_queries))
    cache = cache_dir / (f"{name}-{len(ids)}.pkl" if len(ids) < len(queries) else f"{name}.pkl")
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from bench.retrieval import _test_cache_index, embedder
    from indexer.build import BuildConfig
    from indexer.index_dir import open_index
    from rag.retrievers import BM25Retriever, DenseRetriever

    emb = embedder("torch")
    corpus = ROOT.parent / "shared/data" / name / "corpus.jsonl"
    path = _test_cache_index(Dataset(name, corpus, {}, {}, []), emb, BuildConfig(skip_empty=True))
    if not (path / "manifest.json").exists():
        raise FileNotFoundError(f"{path}: the cached dev index is missing (run the retrieval tests once)")
    index = open_index(path)
    runs: Runs = {q: {} for q in ids}
    for member in (BM25Retriever(index), DenseRetriever(index, emb)):
        for start in range(0, len(ids), 64):
            batch = ids[start:start + 64]
            for qid, hits in zip(batch, member.batch_search([queries[q] for q in batch], DEPTH)):
                runs[qid][member.name] = [(h.passage.chunk_id, h.passage.doc_id, h.score) for h in hits]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(runs))
    return runs


@dataclass(frozen=True)
class Prepared:
    """One query's member runs, in the shapes the fusion functions take (built once, fused many times)."""

    scores: dict[str, dict[str, float]]
    doc: dict[str, str]
    dense_docs: list[str]


def prepare(members: dict[str, list[tuple[str, str, float]]]) -> Prepared:
    return Prepared({m: {c: s for c, _, s in hits} for m, hits in members.items()},
                    {c: d for hits in members.values() for c, d, _ in hits}, [d for _, d, _ in members["dense"]])


def fuse_docs(query: Prepared, setting: dict[str, Any]) -> dict[str, float]:
    """The fused ranking (as HybridRetriever._fuse), collapsed to its first 100 documents."""
    if setting["fusion"] == "dense":
        ranked = query.dense_docs
    else:
        w = setting["bm25_weight"]
        fused = FUSIONS[setting["fusion"]](query.scores, {"bm25": w, "dense": 1.0 - w}, setting.get("rrf_k", 60))
        ranked = [query.doc[c] for c in sorted(fused, key=lambda c: (-fused[c], c))[:DEPTH]]
    docs: dict[str, float] = {}
    for d in ranked:
        if d not in docs:
            docs[d] = float(len(ranked) - len(docs))
        if len(docs) == 100:
            break
    return docs or {"__none__": 0.0}


def score(runs: dict[str, Prepared], qrels: dict[str, dict[str, int]], qids: list[str],
          setting: dict[str, Any]) -> dict[str, float]:
    run = {q: fuse_docs(runs[q], setting) for q in qids}
    got = evaluate(Qrels({q: qrels[q] for q in qids}), Run(run), ["ndcg@10", "recall@100"], make_comparable=True)
    return {m: round(float(v), 4) for m, v in got.items()}


def grid() -> Iterator[dict[str, Any]]:
    yield {"fusion": "dense", "bm25_weight": 0.0}
    for w in [i / 10 for i in range(1, 10)]:
        for fusion in (f for f in FUSIONS if f != "rrf"):
            yield {"fusion": fusion, "bm25_weight": w}
        for k in (10, 60):
            yield {"fusion": "rrf", "bm25_weight": w, "rrf_k": k}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/fusion_tuning.json")
    ap.add_argument("--runs-cache", type=Path, default=Path("/tmp/chimed-fusion-runs"))
    ap.add_argument("--max-queries", nargs="*", default=[], metavar="SET=N",
                    help="at most N dev queries of SET (a seeded sample, seed 0), e.g. toyhom-qa=1200")
    ap.add_argument("--only-runs", nargs="*", help="only compute (and cache) these sets' member runs")
    ap.add_argument("--sets", nargs="+", default=list(SETS), help="the sets to tune on (default: all three)")
    args = ap.parse_args()
    limits = {name: int(n) for name, n in (item.split("=", 1) for item in args.max_queries)}
    data: dict[str, tuple[dict[str, Prepared], dict[str, dict[str, int]], dict[str, list[str]]]] = {}
    if args.only_runs:
        for name in args.only_runs:
            member_runs(name, args.runs_cache, limits.get(name))
        return
    for name in args.sets:
        runs = {q: prepare(m) for q, m in member_runs(name, args.runs_cache, limits.get(name)).items()}
        qrels = read_qrels(ROOT.parent / "shared/data" / name / "dev/qrels.tsv")
        qids = [q for q in runs if q in qrels]
        data[name] = (runs, qrels, {s: [q for q in qids if split_of(q) == s] for s in "AB"})
    baseline = {"fusion": "minmax", "bm25_weight": 0.5}
    table = []
    for setting in grid():
        a = {n: score(r, qr, sp["A"], setting)["ndcg@10"] for n, (r, qr, sp) in data.items()}
        table.append({"setting": setting, "A": a, "mean_A": round(sum(a.values()) / len(a), 4)})
    table.sort(key=lambda row: -row["mean_A"])
    chosen = table[0]["setting"]
    report: dict[str, Any] = {"split": "sha256(query id)[0] % 2 == 0 -> A", "query_limits": limits,
                              "chosen_on_A": chosen,
                              "baseline": baseline, "top10_on_A": table[:10], "sets": {}}
    for name, (runs, qrels, sp) in data.items():
        report["sets"][name] = {
            "queries": {s: len(v) for s, v in sp.items()},
            **{f"{label}_{s}": score(runs, qrels, sp[s], setting)
               for label, setting in (("baseline", baseline), ("chosen", chosen),
                                      ("dense", {"fusion": "dense", "bm25_weight": 0.0}))
               for s in "AB"},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("chosen_on_A", "sets")}, indent=1))


if __name__ == "__main__":
    main()
