"""Incremental updates: add/delete leave exactly the index a full rebuild of the resulting corpus gives."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.build import add_documents, build_index, delete_documents
from indexer.embedding import SentenceTransformerEmbedder
from indexer.index_dir import STAGING, builds_dir, complete_generations, open_index, read_manifest
from indexer.loaders import load_corpus
from indexer.types import Document
from rag.retrievers import make_retrievers
from rag.settings import Settings

QUERIES = ["高血压吃什么药", "感冒怎么处理", "贫血要补铁吗", "孩子发烧怎么办", "胸口疼出冷汗", "糖尿病饮食",
           "血小板减少", "咳嗽一直不好", "拉肚子", "头晕乏力", "皮肤痒起疹子", "失眠怎么办"]


class CountingEmbedder:
    """The real embedder, counting the passages it is asked to embed."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner, self.passages = inner, 0
        self.model_id, self.dimension = inner.model_id, inner.dimension

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.passages += len(texts)
        return self.inner.embed_passages(texts)


def write_jsonl(path: Path, docs: Sequence[Document]) -> Path:
    rows = [{"id": d.id, "title": d.title, "text": d.text, "source": d.source, "url": d.url,
             "metadata": d.metadata} for d in docs]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped_docs() -> list[Document]:
    return load_corpus(Settings().corpus)


def results(index_dir: Path, embedder: Any) -> dict[str, list[list[tuple[str, float]]]]:
    retrievers = make_retrievers(open_index(index_dir, verify="full"), embedder)
    return {mode: [[(h.passage.chunk_id, h.score) for h in retrievers[mode].search(q, 10)] for q in QUERIES]
            for mode in ("bm25", "dense", "hybrid")}


def test_add_and_delete_equal_a_full_rebuild(tmp_path: Path, shipped_docs: list[Document],
                                              embedder: SentenceTransformerEmbedder) -> None:
    config = Settings().build_config()
    base, extra = shipped_docs[:24], shipped_docs[24:34]
    changed = dataclasses.replace(base[0], text=base[0].text + "\n补充：规律随访，遵医嘱调整治疗。")
    live = tmp_path / "live"
    build_index([write_jsonl(tmp_path / "base.jsonl", base)], live, embedder, config)

    counting = CountingEmbedder(embedder)
    added = add_documents(live, [*extra, changed], counting)  # type: ignore[arg-type]
    upserted = [*extra, changed]
    assert added["update"]["kind"] == "incremental" and added["update"]["upserted_count"] == len(upserted)
    assert counting.passages == sum(added["documents"][d.id]["chunks"] for d in upserted)  # nothing else
    deleted = delete_documents(live, [base[5].id, base[6].id], counting)  # type: ignore[arg-type]
    assert deleted["generation"] == 3 and deleted["counts"]["documents"] == len(base) + len(extra) - 2

    final = [changed, *base[1:5], *base[7:], *extra]
    rebuilt = tmp_path / "rebuilt"
    full = build_index([write_jsonl(tmp_path / "final.jsonl", final)], rebuilt, embedder, config)
    assert full["update"]["kind"] == "full"
    assert deleted["index_id"] == full["index_id"]  # same corpus + settings => same id
    assert deleted["documents"] == full["documents"]

    got, want = results(live, embedder), results(rebuilt, embedder)
    for mode in want:
        for query, g, w in zip(QUERIES, got[mode], want[mode]):
            assert [cid for cid, _ in g] == [cid for cid, _ in w], (mode, query)
            np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-5, err_msg=f"{mode} {query}")


def test_unknown_or_bad_updates_change_nothing(tmp_path: Path, tiny_corpus: Path,
                                               embedder: SentenceTransformerEmbedder) -> None:
    out = tmp_path / "idx"
    build_index([tiny_corpus], out, embedder)
    before = read_manifest(out)
    with pytest.raises(ValueError, match=r"no such document.*nope"):
        delete_documents(out, ["nope"], embedder)
    with pytest.raises(ValueError, match="duplicate document ids"):
        add_documents(out, [Document("x", "", "一。"), Document("x", "", "二。")], embedder)
    with pytest.raises(ValueError, match="every document"):
        delete_documents(out, list(before["documents"]), embedder)
    assert read_manifest(out) == before
    same = Document(**json.loads(tiny_corpus.read_text("utf-8").splitlines()[0]))
    assert add_documents(out, [same], embedder)["generation"] == 1  # unchanged: nothing published


def test_killed_builds_never_count_and_never_cause_pruning(tmp_path: Path, tiny_corpus: Path,
                                                           embedder: SentenceTransformerEmbedder) -> None:
    out = tmp_path / "idx"
    build_index([tiny_corpus], out, embedder)
    delete_documents(out, ["dm"], embedder)
    good = [p.name for p in complete_generations(out)]
    # What a build killed by SIGTERM/SIGKILL leaves behind: a half-written staging folder.
    stale = builds_dir(out) / f"{STAGING}deadbeef"
    (stale / "bm25").mkdir(parents=True)
    (stale / "dense.faiss").write_bytes(b"\0" * 10)
    assert [p.name for p in complete_generations(out)] == good
    delete_documents(out, ["mi"], embedder)
    names = sorted(p.name for p in builds_dir(out).iterdir())
    assert not stale.exists() and len(names) == 2  # the live one and the good one before it
    assert good[-1] in names and open_index(out, verify="full").generation == 3


def test_other_settings_rebuild_from_scratch(tmp_path: Path, tiny_corpus: Path,
                                             embedder: SentenceTransformerEmbedder) -> None:
    out = tmp_path / "idx"
    first = build_index([tiny_corpus], out, embedder)
    config = dataclasses.replace(Settings().build_config(), chunker=dataclasses.replace(
        Settings().build_config().chunker, max_chars=60))
    second = build_index([tiny_corpus], out, embedder, config)
    assert second["update"]["kind"] == "full" and second["index_id"] != first["index_id"]
    assert second["counts"]["chunks"] > first["counts"]["chunks"]
