"""Retrievers over the storage seam (chunk ids in, hits out), and a hybrid of any named retrievers.

``HybridRetriever.retrieve`` runs every member once and keeps each member's own ranked run next to the
fused list, so the pipeline's abstention features come from the same retrieval as the answer passages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from indexer.embedding import Embedder
from indexer.index_dir import LoadedIndex
from indexer.stores import DenseStore, ScoredIds, SparseIndex
from rag.fusion import FUSIONS
from rag.normalise import TermNormaliser
from rag.protocols import Retriever
from rag.types import Hit

MODES = ("bm25", "dense", "hybrid")


def _hits(index: LoadedIndex, name: str, run: ScoredIds, names: Sequence[str]) -> list[Hit]:
    return [Hit(index.passage(cid), s, r, {n: (s if n == name else None) for n in names})
            for r, (cid, s) in enumerate(run, start=1)]


class BM25Retriever:
    name = "bm25"

    def __init__(self, index: LoadedIndex, sparse: SparseIndex | None = None,
                 normaliser: TermNormaliser | None = None) -> None:
        self.index = index
        self.sparse = sparse or index.sparse
        # Patient wording gets the corpus' medical terms appended (拉肚子 → 腹泻); no words are dropped.
        self.normaliser = normaliser or TermNormaliser()

    def batch_search(self, queries: Sequence[str], top_k: int = 10) -> list[list[Hit]]:
        analyzer = self.index.analyzer
        runs = [self.sparse.search(analyzer.tokenize_query(self.normaliser.expand(q)), top_k) for q in queries]
        return [_hits(self.index, self.name, run, ("bm25", "dense")) for run in runs]

    def search(self, query: str, top_k: int = 10) -> list[Hit]:
        return self.batch_search([query], top_k)[0]


class DenseRetriever:
    name = "dense"

    def __init__(self, index: LoadedIndex, embedder: Embedder, dense: DenseStore | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.dense = dense or index.dense

    def batch_search(self, queries: Sequence[str], top_k: int = 10) -> list[list[Hit]]:
        runs = self.dense.search(self.embedder.embed_queries(list(queries)), top_k)
        return [_hits(self.index, self.name, run, ("bm25", "dense")) for run in runs]

    def search(self, query: str, top_k: int = 10) -> list[Hit]:
        return self.batch_search([query], top_k)[0]


@dataclass(frozen=True)
class HybridConfig:
    fusion: str = "minmax"
    weights: tuple[float, float] = (0.5, 0.5)  # (bm25, dense) for the default pair
    candidates: int = 100  # per retriever, before fusion
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; expected one of {', '.join(FUSIONS)}")


@dataclass(frozen=True)
class Retrieval:
    """One retrieval: the fused ranking and every member retriever's own ranked run."""

    hits: list[Hit]
    runs: dict[str, list[Hit]] = field(default_factory=dict)


class HybridRetriever:
    name = "hybrid"

    def __init__(self, members: Mapping[str, Retriever], weights: Mapping[str, float],
                 config: HybridConfig | None = None) -> None:
        self.members = dict(members)
        self.weights = dict(weights)
        self.config = config or HybridConfig()

    def retrieve(self, queries: Sequence[str], top_k: int) -> list[Retrieval]:
        k = max(top_k, self.config.candidates)
        per_member = {name: r.batch_search(queries, k) for name, r in self.members.items()}
        return [self._fuse({name: runs[i] for name, runs in per_member.items()}, top_k) for i in range(len(queries))]

    def _fuse(self, runs: dict[str, list[Hit]], top_k: int) -> Retrieval:
        scores = {name: {h.passage.chunk_id: h.score for h in hits} for name, hits in runs.items()}
        fused = FUSIONS[self.config.fusion](scores, self.weights, self.config.rrf_k)
        passages = {h.passage.chunk_id: h.passage for hits in runs.values() for h in hits}
        ranked = sorted(fused, key=lambda cid: (-fused[cid], cid))[:top_k]
        hits = [Hit(passages[cid], fused[cid], r, {n: scores[n].get(cid) for n in runs})
                for r, cid in enumerate(ranked, start=1)]
        return Retrieval(hits, runs)

    def batch_search(self, queries: Sequence[str], top_k: int = 10) -> list[list[Hit]]:
        return [r.hits for r in self.retrieve(queries, top_k)]

    def search(self, query: str, top_k: int = 10) -> list[Hit]:
        return self.batch_search([query], top_k)[0]


def make_retrievers(index: LoadedIndex, embedder: Embedder, hybrid: HybridConfig | None = None,
                    normaliser: TermNormaliser | None = None) -> dict[str, object]:
    config = hybrid or HybridConfig()
    members: dict[str, Retriever] = {"bm25": BM25Retriever(index, normaliser=normaliser),
                                     "dense": DenseRetriever(index, embedder)}
    weights = dict(zip(("bm25", "dense"), config.weights))
    return {**members, "hybrid": HybridRetriever(members, weights, config)}
