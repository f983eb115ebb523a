"""Optional cross-encoder rerank stage (sentence-transformers ``CrossEncoder``, any hub id or local path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.types import Hit


@dataclass(frozen=True)
class RerankConfig:
    model: str
    candidates: int = 20  # how many fused hits are rescored
    device: str = "cpu"
    batch_size: int = 16


class CrossEncoderReranker:
    name = "rerank"

    def __init__(self, config: RerankConfig) -> None:
        from sentence_transformers import CrossEncoder

        self.config = config
        self.model = CrossEncoder(config.model, device=config.device)

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
