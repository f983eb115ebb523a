"""The onnxruntime / onnxruntime-int8 encoder backends against the torch encoder, and the manifest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_index
from indexer.embedding import EmbedderConfig, SentenceTransformerEmbedder, resolve_model_path
from indexer.errors import ModelMismatchError
from indexer.index_dir import check_embedding, open_index
from indexer.onnx_backend import ensure_onnx_model

TEXTS = ["普通感冒多由鼻病毒引起，常见鼻塞、流涕、咽痛。",
         "高血压患者每天食盐不超过5克。", "腹泻时要及时补充水分和电解质"]


@pytest.fixture(scope="module")
def int8_embedder(embedder: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(replace(embedder.config, backend="onnxruntime-int8", threads=1))


def test_onnx_fp32_matches_torch(embedder: SentenceTransformerEmbedder) -> None:
    ort = SentenceTransformerEmbedder(replace(embedder.config, backend="onnxruntime"))
    ours, ref = ort.embed_passages(TEXTS), embedder.embed_passages(TEXTS)
    assert ours.shape == ref.shape == (3, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    np.testing.assert_allclose(ort.embed_queries(TEXTS), embedder.embed_queries(TEXTS), atol=1e-4)


def test_int8_is_close_to_fp32_and_keeps_order(embedder: SentenceTransformerEmbedder,
                                               int8_embedder: SentenceTransformerEmbedder) -> None:
    # Length-bucketed batches must come back in input order: the texts have different lengths.
    q8, p8 = int8_embedder.embed_queries(["感冒怎么办"]), int8_embedder.embed_passages(TEXTS)
    q32, p32 = embedder.embed_queries(["感冒怎么办"]), embedder.embed_passages(TEXTS)
    assert np.allclose(np.linalg.norm(p8, axis=1), 1.0, atol=1e-5)
    assert (np.sum(p8 * p32, axis=1) > 0.97).all()
    assert int((p8 @ q8[0]).argmax()) == int((p32 @ q32[0]).argmax()) == 0


def test_int8_model_is_cached_and_smaller(int8_embedder: SentenceTransformerEmbedder) -> None:
    root = Path(resolve_model_path(int8_embedder.config.model, int8_embedder.config.cache_dir))
    q8, fp32 = ensure_onnx_model(root, quantize=True), ensure_onnx_model(root, quantize=False)
    assert q8.exists() and fp32.exists() and q8.stat().st_size < fp32.stat().st_size / 2


def test_ffn_output_projections_stay_fp32(int8_embedder: SentenceTransformerEmbedder) -> None:
    import onnx

    root = Path(resolve_model_path(int8_embedder.config.model, int8_embedder.config.cache_dir))
    nodes = onnx.load(str(ensure_onnx_model(root, quantize=True)), load_external_data=False).graph.node
    float_matmuls = {n.name for n in nodes if n.op_type == "MatMul"}
    int_matmuls = [n.name for n in nodes if n.op_type == "MatMulInteger"]
    assert {f"/model/encoder/layer.{i}/output/dense/MatMul" for i in range(12)} <= float_matmuls
    assert len(int_matmuls) == 12 * 5  # q, k, v, attention output, FFN in: int8 in every layer


def test_backend_is_recorded_and_checked(tmp_path: Path, tiny_corpus: Path,
                                         int8_embedder: SentenceTransformerEmbedder) -> None:
    manifest = build_index([tiny_corpus], tmp_path / "idx", int8_embedder)
    assert manifest["embedding"]["backend"] == "onnxruntime-int8"
    check_embedding(open_index(tmp_path / "idx").manifest, int8_embedder.describe())
    with pytest.raises(ModelMismatchError, match="backend 'onnxruntime-int8' but 'torch'"):
        check_embedding(manifest, {**int8_embedder.describe(), "backend": "torch"})
    # An index quantised another way (or before the scheme was recorded) is refused too.
    older = {**manifest, "embedding": {k: v for k, v in manifest["embedding"].items() if k != "quantization"}}
    with pytest.raises(ModelMismatchError, match="quantization None"):
        check_embedding(older, int8_embedder.describe())


def test_unknown_pooling_is_refused(tmp_path: Path) -> None:
    from indexer.onnx_backend import _pooling

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text('[{"path": "1_Pooling", "type": "x.Pooling"}]', encoding="utf-8")
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_max_tokens": true}', encoding="utf-8")
    with pytest.raises(ValueError, match="only mean or CLS pooling"):
        _pooling(tmp_path)
    assert EmbedderConfig().backend == "torch"  # the default stays the torch fp32 encoder


def test_token_sorted_batches_give_each_text_its_own_vector(embedder: SentenceTransformerEmbedder) -> None:
    """Batching by token count (with a token cap) must not change a vector: padding is masked out."""
    from indexer.onnx_backend import OnnxConfig, OnnxEncoder

    root = resolve_model_path(embedder.config.model, embedder.config.cache_dir)
    texts = [f"passage: {t}" for t in TEXTS * 3] + ["passage: 发热" * n for n in (1, 7, 30)]
    encoder = OnnxEncoder(root, OnnxConfig(quantize=False, threads=1, batch_tokens=64))
    batched = encoder.encode(texts, batch_size=4)
    alone = np.concatenate([encoder.encode([t], batch_size=1) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    ids = encoder._tokenizer(texts)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = list(encoder._row_batches(order, ids, batch_size=4))
    assert sorted(i for rows in batches for i in rows) == list(range(len(texts)))
    for rows in batches:
        assert len(rows) <= 4
        assert len(rows) == 1 or len(rows) * max(len(ids[i]) for i in rows) <= 64
    assert [len(ids[i]) for rows in batches for i in rows] == sorted(len(x) for x in ids)
