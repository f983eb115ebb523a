"""Precision/recall of the `unsupported` label on answers built from a shared dev set.

    PYTHONPATH=. python bench/support_eval.py [--set cmeie-qa] [--limit 300]

Reads ../shared/data/<set>/ at run time (nothing is copied into the repository).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from indexer.analyzer import ChineseAnalyzer
from indexer.embedding import SentenceTransformerEmbedder
from rag.evaluation import support_cases
from rag.settings import PROJECT_ROOT, Settings
from rag.support import SupportChecker


def unsupported_pr(labels: list[str], truth: list[bool]) -> tuple[float, float]:
    flagged = [not t for label, t in zip(labels, truth) if label == "unsupported"]
    positives = sum(not t for t in truth)
    precision = sum(flagged) / len(flagged) if flagged else 0.0
    return precision, sum(flagged) / positives if positives else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="cmeie-qa")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--spliced", action="store_true", help="half-true unsupported sentences (harder)")
    ap.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    root = args.data / args.set
    cases = support_cases(root / "corpus.jsonl", root / "dev" / "queries.jsonl", root / "dev" / "qrels.tsv",
                          args.limit, spliced=args.spliced)
    settings = Settings()
    checker = SupportChecker(ChineseAnalyzer().tokenize, SentenceTransformerEmbedder(settings.embedder_config()),
                             settings.support_config())
    scores = [(s,) for s in checker.score_pairs([(sentence, passage) for passage, sentence, _ in cases])]
    truth = [t for _, _, t in cases]
    labels = [checker.label(s[0]) for s in scores]
    precision, recall = unsupported_pr(labels, truth)
    sweep = {}
    for t in [x / 100 for x in range(40, 91, 5)]:
        sweep[t] = unsupported_pr(["unsupported" if s[0] < t else "supported" for s in scores], truth)
    print(json.dumps({"set": args.set, "spliced": args.spliced, "cases": len(cases),
                      "unsupported_cases": truth.count(False),
                      "weak_threshold": checker.config.weak, "precision": round(precision, 3),
                      "recall": round(recall, 3),
                      "sweep": {str(k): [round(p, 3), round(r, 3)] for k, (p, r) in sweep.items()}}))


if __name__ == "__main__":
    main()
