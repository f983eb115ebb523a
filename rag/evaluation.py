"""Retrieval evaluation on BEIR-style data with ranx (document-level: chunks collapse to their document)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ranx import Qrels, Run, evaluate

from rag.protocols import Retriever
from rag.types import Hit

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
PRIMARY_METRIC = "ndcg@10"


def read_queries(path: str | Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    obj = json.loads(line)
                    queries[str(obj["id"])] = obj["text"]
                except (json.JSONDecodeError, KeyError) as exc:
                    raise ValueError(f"{path}:{number}: expected a JSON object with 'id' and 'text'") from exc
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(rows, start=1):
            if number == 1 and not row[-1].strip().lstrip("-").isdigit():
                continue  # header line
            if len(row) < 3:
                raise ValueError(f"{path}:{number}: expected query-id<TAB>corpus-id<TAB>score")
            if int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def collapse_to_documents(hits: Sequence[Hit], k: int) -> dict[str, float]:
    """First (best) hit of each document, scored by descending rank so ties cannot reorder them."""
    docs: dict[str, float] = {}
    for hit in hits:
        if hit.passage.doc_id not in docs:
            docs[hit.passage.doc_id] = float(len(hits) - len(docs))
        if len(docs) == k:
            break
    return docs


class RetrievalEvaluator:
    """Evaluates a retriever on queries + qrels; the primary metric is nDCG@10."""

    def __init__(self, queries: dict[str, str], qrels: dict[str, dict[str, int]], depth: int = 100,
                 chunk_depth: int = 300, batch_size: int = 64) -> None:
        self.qrels = {q: r for q, r in qrels.items() if q in queries}
        self.queries = {q: queries[q] for q in self.qrels}
        self.depth = depth
        self.chunk_depth = chunk_depth
        self.batch_size = batch_size

    def run(self, retriever: Retriever) -> dict[str, float]:
        ids = list(self.queries)
        run: dict[str, dict[str, float]] = {}
        for start in range(0, len(ids), self.batch_size):
            batch = ids[start : start + self.batch_size]
            results = retriever.batch_search([self.queries[q] for q in batch], top_k=self.chunk_depth)
            for qid, hits in zip(batch, results):
                run[qid] = collapse_to_documents(hits, self.depth) or {"__none__": 0.0}
        scores = evaluate(Qrels(self.qrels), Run(run), list(METRICS), make_comparable=True)
        return {m: round(float(scores[m]), 4) for m in METRICS} | {"queries": len(ids)}
