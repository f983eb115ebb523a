"""nDCG@10 retention of the default ("auto") encoder against torch fp32, on one dev set's full corpus.

Two indexes of the same corpus and chunking, one built with each encoder (each queried with its own
recorded encoder, strictly); every dev query with a relevant document, document-level metrics
(``rag.evaluation.RetrievalEvaluator``, as ``bench/retrieval.py``). The corpus is the whole dev corpus:
the relevant documents plus thousands of distractors, identical for both encoders.

    python -m bench.retention --dataset cmeie-qa --fp32 DIR --fast DIR [--out bench/results/X.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import load_dataset
from indexer.embedding import EmbedderConfig, SentenceTransformerEmbedder
from indexer.index_dir import check_embedding, open_index
from rag.evaluation import RetrievalEvaluator
from rag.retrievers import make_retrievers
from rag.settings import Settings

MODES = ("dense", "hybrid")


def evaluate(index_dir: Path, evaluator: RetrievalEvaluator) -> dict[str, Any]:
    index = open_index(index_dir)
    built = index.manifest["embedding"]
    settings = Settings()
    embedder = SentenceTransformerEmbedder(EmbedderConfig(model=settings.embedding_model, backend=built["backend"],
                                                          cache_dir=str(settings.cache_dir), query_cache_size=0))
    check_embedding(index.manifest, embedder.describe())  # strict: the index's own encoder
    retrievers = make_retrievers(index, embedder, settings.hybrid_config())
    return {"backend": built["backend"], "quantization": built.get("quantization"),
            "chunks": index.manifest["counts"]["chunks"],
            **{mode: evaluator.run(retrievers[mode]) for mode in MODES}}  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cmeie-qa")
    p.add_argument("--fp32", type=Path, required=True, help="index built with the torch fp32 encoder")
    p.add_argument("--fast", type=Path, required=True, help="index built with the default encoder")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    began = time.perf_counter()
    data = load_dataset(args.dataset)
    evaluator = RetrievalEvaluator(data.queries, data.qrels, chunk_depth=100)
    fp32, fast = evaluate(args.fp32, evaluator), evaluate(args.fast, evaluator)
    result = {"dataset": args.dataset, "queries": len(data.queries), "fp32": fp32, "fast": fast,
              "ndcg10_retention": {m: round(fast[m]["ndcg@10"] / fp32[m]["ndcg@10"], 4) for m in MODES},
              "seconds": round(time.perf_counter() - began, 1)}
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
