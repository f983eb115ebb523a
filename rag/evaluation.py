"""Retrieval evaluation on BEIR-style data with ranx (document-level: chunks collapse to their document)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ranx import Qrels, Run, evaluate
from tqdm import tqdm

from rag.protocols import Retriever
from rag.types import Hit

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
PRIMARY_METRIC = "ndcg@10"


QUESTION_KEYS = ("text", "question")  # BEIR query files say "text", question lists often "question"


def read_queries(path: str | Path, require_id: bool = True) -> dict[str, str]:
    """id -> question of a JSONL query file, for `eval retrieval` and `calibrate` alike.

    The question is under ``text`` or ``question``; without ``require_id`` a missing id is the line number.
    """
    wanted = " or ".join(repr(k) for k in QUESTION_KEYS) + (" and 'id'" if require_id else "")
    queries: dict[str, str] = {}
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg}); expected an object with {wanted}") \
                    from exc
            text = next((obj[k] for k in QUESTION_KEYS if isinstance(obj, dict) and isinstance(obj.get(k), str)),
                        None)
            if text is None or not text.strip() or (require_id and "id" not in obj):
                found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                raise ValueError(f"{path}:{number}: expected a JSON object with {wanted} (found {found})")
            queries[str(obj.get("id", f"line-{number}"))] = text
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

    def run(self, retriever: Retriever, show_progress: bool = False) -> dict[str, float]:
        ids = list(self.queries)
        run: dict[str, dict[str, float]] = {}
        with tqdm(total=len(ids), desc="queries evaluated", unit="query", disable=not show_progress) as bar:
            for start in range(0, len(ids), self.batch_size):
                batch = ids[start : start + self.batch_size]
                results = retriever.batch_search([self.queries[q] for q in batch], top_k=self.chunk_depth)
                for qid, hits in zip(batch, results):
                    run[qid] = collapse_to_documents(hits, self.depth) or {"__none__": 0.0}
                bar.update(len(batch))
        scores = evaluate(Qrels(self.qrels), Run(run), list(METRICS), make_comparable=True)
        return {m: round(float(scores[m]), 4) for m in METRICS} | {"queries": len(ids)}


def support_cases(corpus: Path, queries: Path, qrels: Path, limit: int = 200, seed: int = 0,
                  spliced: bool = False) -> list[tuple[str, str, bool]]:
    """(passage text, answer sentence, is_supported) cases for measuring citation checking.

    Each dev query's relevant passage is the cited passage. Supported sentences are its own sentences
    with their first clause dropped where they have several (so they are not verbatim copies);
    unsupported ones come from another passage with the same title where one exists (same topic, other
    facts — the hard case), else from a random passage. ``spliced`` makes the unsupported ones harder:
    the first half of a true sentence joined to the second half of a foreign one (half right, half not).
    """
    import random

    from indexer.chunking import split_sentences

    docs = {}
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                obj = json.loads(line)
                docs[str(obj["id"])] = (obj.get("title", ""), obj.get("text", ""))
    by_title: dict[str, list[str]] = {}
    for doc_id, (title, _) in docs.items():
        by_title.setdefault(title, []).append(doc_id)
    rng = random.Random(seed)
    ids = sorted(docs)

    def sentences(doc_id: str) -> list[str]:
        text = docs[doc_id][1]
        return [text[s:e] for s, e in split_sentences(text) if e - s >= 12]

    cases: list[tuple[str, str, bool]] = []
    relevant = read_qrels(qrels)
    for qid in list(read_queries(queries))[:limit]:
        rel = [d for d, grade in relevant.get(qid, {}).items() if grade > 0 and d in docs]
        if not rel or not sentences(rel[0]):
            continue
        passage = docs[rel[0]][1]
        true = rng.choice(sentences(rel[0]))
        clauses = [c for c in true.split("，") if c]
        cases.append((passage, "，".join(clauses[1:]) if len(clauses) > 2 else true, True))
        title = docs[rel[0]][0]
        pool = by_title[title] if title and len(by_title[title]) > 1 else ids
        for _ in range(5):  # a few draws find a passage with usable sentences; no full scan of the pool
            other = rng.choice(pool)
            foreign = [s for s in sentences(other) if s not in passage] if other not in rel else []
            if foreign:
                wrong = rng.choice(foreign)
                if spliced:
                    wrong = true[: len(true) // 2] + wrong[len(wrong) // 2:]
                cases.append((passage, wrong, False))
                break
    return cases
