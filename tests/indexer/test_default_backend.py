"""The default ("auto") encoder: openvino-int8 where it loads, torch with a warning where it cannot."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import numpy as np
import pytest

from indexer.embedding import FAST_BACKEND, SentenceTransformerEmbedder
from indexer.errors import ModelMismatchError
from indexer.index_dir import check_embedding
from rag.settings import Settings

TEXTS = ["普通感冒多由鼻病毒引起，常见鼻塞、流涕、咽痛。", "高血压患者每天食盐不超过5克。"]


@pytest.fixture
def no_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO as on a machine without it: ``import openvino`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "openvino", None)


def test_settings_default_is_auto_and_follows_an_existing_index() -> None:
    settings = Settings()
    assert settings.embedding_backend == "auto"
    assert settings.embedder_config().backend == "auto"  # a new index: the fast encoder
    follows = settings.embedder_config({"backend": "torch"})
    assert (follows.backend, follows.fallback) == ("torch", True)
    strict = Settings(embedding_backend="openvino-int8").embedder_config({"backend": "torch"})
    assert (strict.backend, strict.fallback) == ("openvino-int8", False)  # named: refused later if different


def test_auto_uses_openvino_int8_when_it_loads(embedder: SentenceTransformerEmbedder) -> None:
    auto = SentenceTransformerEmbedder(replace(embedder.config, backend="auto"))
    assert auto.backend == FAST_BACKEND and auto.fallback_reason is None
    assert auto.describe()["backend"] == FAST_BACKEND and "quantization" in auto.describe()
    assert auto._model is None  # the torch weights are dropped once the exported encoder is up
    assert auto.dimension == embedder.dimension and auto.describe()["query_prompt"] == "query: "
    cosine = np.sum(auto.embed_queries(TEXTS) * embedder.embed_queries(TEXTS), axis=1)
    assert cosine.min() > 0.99


def test_auto_falls_back_to_torch_with_a_warning(no_openvino: None, embedder: SentenceTransformerEmbedder,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="indexer.embedding"):
        auto = SentenceTransformerEmbedder(replace(embedder.config, backend="auto"))
    assert auto.backend == "torch" and "ModuleNotFoundError" in (auto.fallback_reason or "")
    assert "openvino-int8 unavailable" in caplog.text
    assert auto.describe() == embedder.describe()  # recorded as what it is: torch, no quantisation
    np.testing.assert_allclose(auto.embed_passages(TEXTS), embedder.embed_passages(TEXTS), atol=1e-6)


def test_a_named_backend_never_falls_back(no_openvino: None, embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(ImportError):
        SentenceTransformerEmbedder(replace(embedder.config, backend="openvino-int8"))


def test_an_int8_index_queried_by_the_fallback_warns_and_otherwise_refuses(
        embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture) -> None:
    manifest = {"embedding": {**embedder.describe(), "backend": FAST_BACKEND, "quantization": "nncf-int8-x"}}
    with pytest.raises(ModelMismatchError, match="backend"):
        check_embedding(manifest, embedder.describe())
    with caplog.at_level(logging.WARNING, logger="indexer.index_dir"):
        check_embedding(manifest, embedder.describe(), fallback="openvino-int8: ImportError")
    assert "built with embedding backend 'openvino-int8'" in caplog.text
    other_model = {"embedding": {**manifest["embedding"], "model": "another-model"}}
    with pytest.raises(ModelMismatchError, match="model"):  # a fallback never excuses another model
        check_embedding(other_model, embedder.describe(), fallback="openvino-int8: ImportError")
