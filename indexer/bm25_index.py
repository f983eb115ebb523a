"""BM25 over the Chinese analyzer, backed by bm25s; built once, saved, memory-mapped at query time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build step at DEBUG


@dataclass(frozen=True)
class BM25Config:
    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"


class BM25Index:
    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model

    @classmethod
    def build(cls, corpus_tokens: Sequence[list[str]], config: BM25Config | None = None,
              show_progress: bool = False) -> BM25Index:
        config = config or BM25Config()
        model = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        # An empty document still needs a token so bm25s keeps rows aligned with chunk ids.
        model.index([tokens or [""] for tokens in corpus_tokens], show_progress=show_progress)
        return cls(model)

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> BM25Index:
        """``mmap``: the score matrix (CSC arrays) is mapped read-only, shared by every process serving the
        generation; the model is never changed after loading (a write rebuilds it, see ``BM25Store``)."""
        return cls(bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False))

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk for the query (zeros when no query token is in the vocabulary)."""
        ids = self._model.get_tokens_ids(query_tokens)
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)
