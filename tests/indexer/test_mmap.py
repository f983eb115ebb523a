"""Memory-mapped serving: identical results, files shared read-only, writes and new generations still safe."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.build import add_documents, build_index, republish
from indexer.dense_index import FaissConfig
from indexer.embedding import SentenceTransformerEmbedder
from indexer.index_dir import CHUNKS, LoadedIndex, complete_generations, open_index
from indexer.stores import DENSE_FILE, FaissStore
from indexer.types import Document

QUERIES = ["高血压吃什么药", "感冒怎么处理", "贫血要补铁吗", "孩子发烧怎么办", "胸口疼出冷汗", "拉肚子"]


def mapped_files() -> set[str]:
    """Files this process maps (the path column of /proc/self/maps)."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def results(index: LoadedIndex, embedder: SentenceTransformerEmbedder) -> list[Any]:
    vectors = embedder.embed_queries(QUERIES)
    return [index.dense.search(vectors, 10),
            [index.sparse.search(index.analyzer.tokenize(q), 10) for q in QUERIES]]


@pytest.fixture(scope="module")
def built(tiny_corpus: Path, embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mmap") / "index"
    build_index([tiny_corpus], out, embedder)
    return out


def test_mapped_index_answers_exactly_like_a_loaded_one(built: Path, embedder: SentenceTransformerEmbedder) -> None:
    loaded = open_index(built, verify="full")
    mapped = open_index(built, verify="full", mmap=True)
    assert results(mapped, embedder) == results(loaded, embedder)
    files = mapped_files()
    assert str(mapped.path / DENSE_FILE) in files  # the vectors are served from the file, not a copy
    assert any(f.startswith(str(mapped.path / "bm25")) and f.endswith(".npy") for f in files)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_a_mapped_store_is_written_after_reading_it_owned(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    config = FaissConfig(type=kind, pq_m=8, ivf_nlist=8)
    store = FaissStore.empty(64, config, size_hint=600)
    store.add([f"c{i}" for i in range(600)], vectors)
    store.save(tmp_path)
    before = digest(tmp_path / DENSE_FILE)
    mapped = FaissStore.load(tmp_path, config, mmap=True)
    assert mapped.mapped
    assert mapped.search(vectors[:5], 5) == FaissStore.load(tmp_path, config).search(vectors[:5], 5)
    # faiss aborts the process on a write to a mapped index; the store reads the file owned first.
    mapped.add(["new"], vectors[:1] * -1)
    assert not mapped.mapped and mapped.count() == 601
    assert mapped.search(vectors[:1] * -1, 1)[0][0][0] == "new"
    assert digest(tmp_path / DENSE_FILE) == before  # the generation's file is never touched
    deleting = FaissStore.load(tmp_path, config, mmap=True)
    deleting.delete(["c1"])  # the first write may be a delete as well
    assert not deleting.mapped and deleting.count() == 599


def test_new_generations_never_disturb_a_mapped_one(tiny_corpus: Path, embedder: SentenceTransformerEmbedder,
                                                    tmp_path: Path) -> None:
    target = tmp_path / "index"
    build_index([tiny_corpus], target, embedder)
    old = open_index(target, verify="full", mmap=True)
    expected, files = results(old, embedder), {p: digest(p) for p in old.path.rglob("*") if p.is_file()}
    # Two more generations: an update (new vectors and matrix) and a republish (hard links of the old files).
    add_documents(target, [Document("new", "贫血", "缺铁性贫血可出现乏力、头晕、面色苍白，治疗包括补充铁剂。")],
                  embedder)
    mid = open_index(target, verify="full", mmap=True)
    assert {p: digest(p) for p in files} == files  # published beside it, nothing rewritten in place
    republish(target, {"note.txt": b"x"}, "test")
    republish(target, {"note.txt": b"y"}, "test")
    assert old.path not in complete_generations(target)  # pruned (unlinked) while still mapped
    assert results(old, embedder) == expected  # the mapping keeps the unlinked files readable
    fresh = open_index(target, verify="full", mmap=True)
    assert fresh.generation == old.generation + 3 and "new" in {p.doc_id for p in fresh.passages}
    assert results(fresh, embedder) == results(mid, embedder)
    assert (fresh.path / CHUNKS).is_file()
