"""Optional cross-encoder rerank stage (sentence-transformers ``CrossEncoder``, any hub id or local path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.protocols import Retriever
from rag.types import Hit


@dataclass(frozen=True)
class RerankConfig:
    model: str  # a hub id, a local folder, or a shipped tuned id (indexer.e5_adapters.RERANK_ADAPTERS)
    candidates: int = 20  # how many fused hits are rescored
    device: str = "cpu"
    batch_size: int = 16
    cache_dir: str | None = None  # where a shipped adapter's merged folder is cached (Settings.cache_dir)


def resolve_model(config: RerankConfig) -> str:
    """A shipped tuned id becomes its hash-checked merged folder; anything else goes to sentence-transformers."""
    from indexer.e5_adapters import RERANK_ADAPTERS, ensure_reranker_folder

    if config.model not in RERANK_ADAPTERS:
        return config.model
    from rag.settings import Settings

    cache = Path(config.cache_dir) if config.cache_dir else Settings().cache_dir
    return str(ensure_reranker_folder(RERANK_ADAPTERS[config.model], cache))


class CrossEncoderReranker:
    name = "rerank"

    def __init__(self, config: RerankConfig) -> None:
        from sentence_transformers import CrossEncoder

        self.config = config
        self.model = CrossEncoder(resolve_model(config), device=config.device)

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        """Rescore the hits, best first; the cross-encoder score joins each hit's per-retriever scores."""
        if not hits:
            return []
        pairs = [(query, h.passage.text) for h in hits]
        scores = self.model.predict(pairs, batch_size=self.config.batch_size, show_progress_bar=False)
        order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), hits[i].rank))[:top_k]
        return [Hit(hits[i].passage, float(scores[i]), rank, {**hits[i].scores, "fused": hits[i].score,
                                                               "rerank": float(scores[i])})
                for rank, i in enumerate(order, start=1)]


class RerankingRetriever:
    """A retriever whose first ``candidates`` hits are rescored by a cross-encoder, as the pipeline reranks;
    deeper hits keep their fused order below them, so Recall@100 stays comparable (``chimed-rag eval``)."""

    def __init__(self, retriever: Retriever, reranker: CrossEncoderReranker, candidates: int) -> None:
        self.retriever = retriever
        self.reranker = reranker
        self.candidates = candidates
        self.name = f"{retriever.name}+rerank"

    def search(self, query: str, top_k: int = 10) -> list[Hit]:
        return self.batch_search([query], top_k)[0]

    def batch_search(self, queries: Sequence[str], top_k: int = 10) -> list[list[Hit]]:
        runs = self.retriever.batch_search(queries, top_k=max(top_k, self.candidates))
        return [self._rerank(q, hits, top_k) for q, hits in zip(queries, runs)]

    def _rerank(self, query: str, hits: list[Hit], top_k: int) -> list[Hit]:
        head = self.reranker.rerank(query, hits[: self.candidates], self.candidates)
        floor = min((h.score for h in head), default=0.0)
        tail = [Hit(h.passage, floor - 1.0 - i, len(head) + i + 1, h.scores)
                for i, h in enumerate(hits[self.candidates :])]
        return (head + tail)[:top_k]
