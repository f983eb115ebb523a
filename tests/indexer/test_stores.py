"""FaissStore deletions keep every surviving chunk's id on every FAISS type (IVF-PQ included)."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.dense_index import FAISS_TYPES, FaissConfig
from indexer.stores import FaissStore


@pytest.mark.parametrize("kind", FAISS_TYPES)
def test_a_deletion_leaves_every_survivor_findable_under_its_own_id(kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1200, 48)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"doc{i // 4}#{i % 4}" for i in range(len(vectors))]
    config = FaissConfig(type=kind, pq_m=8, ivf_nlist=8, ivf_nprobe=8)
    store = FaissStore.empty(48, config, size_hint=len(ids))
    store.add(ids, vectors)
    gone = set(ids[::3])
    store.delete(gone)
    survivors = [i for i, chunk in enumerate(ids) if chunk not in gone]
    hits = store.search(vectors[survivors], 3)
    top = [h[0][0] for h in hits]
    found = np.mean([t == ids[i] for t, i in zip(top, survivors)])
    assert found >= (0.95 if kind == "ivfpq" else 0.999), found  # PQ codes are approximate; ids must be right
    assert not gone & {chunk for h in hits for chunk, _ in h}
