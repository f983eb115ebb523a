"""The openvino / openvino-int8 encoder backends against the torch encoder, and the manifest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_index
from indexer.embedding import SentenceTransformerEmbedder, resolve_model_path
from indexer.errors import ModelMismatchError
from indexer.index_dir import check_embedding, open_index
from indexer.openvino_backend import calibration_texts, ensure_openvino_model, quant_scheme

TEXTS = ["普通感冒多由鼻病毒引起，常见鼻塞、流涕、咽痛。",
         "高血压患者每天食盐不超过5克。", "腹泻时要及时补充水分和电解质"]


@pytest.fixture(scope="module")
def ov_int8(embedder: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(replace(embedder.config, backend="openvino-int8"))


def test_openvino_fp32_matches_torch(embedder: SentenceTransformerEmbedder) -> None:
    ov = SentenceTransformerEmbedder(replace(embedder.config, backend="openvino", threads=1))
    np.testing.assert_allclose(ov.embed_passages(TEXTS), embedder.embed_passages(TEXTS), atol=1e-4)
    np.testing.assert_allclose(ov.embed_queries(TEXTS), embedder.embed_queries(TEXTS), atol=1e-4)
    assert "quantization" not in ov.describe()


def test_int8_is_close_to_fp32_keeps_order_and_is_cached(embedder: SentenceTransformerEmbedder,
                                                         ov_int8: SentenceTransformerEmbedder) -> None:
    q8, p8 = ov_int8.embed_queries(["感冒怎么办"]), ov_int8.embed_passages(TEXTS)
    q32, p32 = embedder.embed_queries(["感冒怎么办"]), embedder.embed_passages(TEXTS)
    assert np.allclose(np.linalg.norm(p8, axis=1), 1.0, atol=1e-5)
    assert (np.sum(p8 * p32, axis=1) > 0.99).all() and float(q8[0] @ q32[0]) > 0.99
    assert int((p8 @ q8[0]).argmax()) == int((p32 @ q32[0]).argmax()) == 0
    root = Path(resolve_model_path(ov_int8.config.model, ov_int8.config.cache_dir))
    xml = ensure_openvino_model(root, quantize=True)
    assert xml.exists() and xml.with_suffix(".bin").exists() and quant_scheme() in xml.name


def test_calibration_is_fixed_text_from_the_shipped_corpus() -> None:
    texts = calibration_texts()
    assert len(texts) > 300 and texts == calibration_texts()
    assert all(t.startswith(("passage: ", "query: ")) for t in texts)


def test_scheme_is_recorded_and_checked(tmp_path: Path, tiny_corpus: Path,
                                        ov_int8: SentenceTransformerEmbedder) -> None:
    manifest = build_index([tiny_corpus], tmp_path / "idx", ov_int8)
    assert manifest["embedding"]["backend"] == "openvino-int8"
    assert manifest["embedding"]["quantization"] == quant_scheme()
    check_embedding(open_index(tmp_path / "idx").manifest, ov_int8.describe())
    other = {**ov_int8.describe(), "quantization": "nncf-int8-transformer-eager-cal00000000"}
    with pytest.raises(ModelMismatchError, match="quantization"):
        check_embedding(manifest, other)
