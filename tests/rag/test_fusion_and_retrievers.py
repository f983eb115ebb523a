from __future__ import annotations

import itertools
from typing import Any

import pytest

from indexer.embedding import SentenceTransformerEmbedder
from rag.fusion import minmax_fuse, minmax_normalize, rrf_fuse
from rag.retrievers import HybridConfig, HybridRetriever, make_retrievers


def test_minmax_and_rrf() -> None:
    assert minmax_normalize({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}
    assert minmax_normalize({1: 5.0}) == {1: 1.0}
    fused = minmax_fuse({"bm25": {1: 10.0, 2: 0.0}, "dense": {2: 0.9, 3: 0.1}}, {"bm25": 0.5, "dense": 0.5})
    assert fused == {1: 0.5, 2: 0.5, 3: 0.0}
    rrf = rrf_fuse({"a": {1: 3.0, 2: 1.0}, "b": {2: 5.0}}, {"a": 1.0, "b": 1.0}, k=60)
    assert rrf[2] == pytest.approx(1 / 62 + 1 / 61) and rrf[1] == pytest.approx(1 / 61)
    with pytest.raises(ValueError):
        HybridConfig(fusion="max")


@pytest.fixture(scope="module")
def retrievers(tiny_index: Any, embedder: SentenceTransformerEmbedder) -> dict[str, Any]:
    return make_retrievers(tiny_index, embedder)


CASES = [("感冒了要吃抗生素吗", "cold"), ("血压高要少吃盐吗", "htn"), ("糖化血红蛋白多少算糖尿病", "dm")]
# No word in common with the document: only the dense side (and so hybrid) can find it.
PARAPHRASE = ("胸口压着疼还出冷汗", "mi")


@pytest.mark.parametrize(("mode", "query", "doc"), [
    *[(m, q, d) for m in ("bm25", "dense", "hybrid") for q, d in CASES],
    ("dense", *PARAPHRASE), ("hybrid", *PARAPHRASE),
])
def test_each_mode_finds_the_right_document(retrievers: dict[str, Any], mode: str, query: str, doc: str) -> None:
    hits = retrievers[mode].search(query, top_k=3)
    assert hits[0].passage.doc_id == doc
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_hybrid_reports_every_retrievers_score(retrievers: dict[str, Any]) -> None:
    hits = retrievers["hybrid"].search("高血压 食盐", top_k=5)
    top = hits[0]
    assert top.passage.doc_id == "htn"
    assert top.scores["bm25"] is not None and top.scores["dense"] is not None
    assert top.score == pytest.approx(1.0)  # best on both sides after min-max


def test_synonym_expansion_changes_bm25_ranking(retrievers: dict[str, Any]) -> None:
    # "拉肚子" appears in no document; the lexicon maps it to 腹泻.
    hits = retrievers["bm25"].search("拉肚子", top_k=3)
    assert hits and hits[0].passage.doc_id == "diarrhea"
    assert retrievers["bm25"].search("完全无关的火星文字", top_k=3) == []


def test_batch_search_matches_search(retrievers: dict[str, Any]) -> None:
    queries = ["感冒", "血糖", "胸痛"]
    for mode in ("bm25", "dense", "hybrid"):
        batch = retrievers[mode].batch_search(queries, top_k=2)
        single = [retrievers[mode].search(q, top_k=2) for q in queries]
        assert [[h.passage.chunk_id for h in r] for r in batch] == [[h.passage.chunk_id for h in r] for r in single]


def test_rrf_variant_and_any_named_members(retrievers: dict[str, Any]) -> None:
    members = {"bm25": retrievers["bm25"], "dense": retrievers["dense"]}
    hybrid = HybridRetriever(members, {"bm25": 0.5, "dense": 0.5}, HybridConfig(fusion="rrf"))
    assert hybrid.search("高血压", top_k=2)[0].passage.doc_id == "htn"
    # Any set of named retrievers: a dense-only "hybrid" ranks exactly as the dense retriever.
    solo = HybridRetriever({"dense": retrievers["dense"]}, {"dense": 1.0})
    assert [h.passage.chunk_id for h in solo.search("胸口压着疼", 3)] == [
        h.passage.chunk_id for h in retrievers["dense"].search("胸口压着疼", 3)]


def test_retrieve_keeps_each_members_run(retrievers: dict[str, Any]) -> None:
    """The pipeline's abstention reads these runs: they must equal each retriever's own search."""
    found = retrievers["hybrid"].retrieve(["血压高要少吃盐吗"], 5)[0]
    for name in ("bm25", "dense"):
        own = retrievers[name].search("血压高要少吃盐吗", 5)
        assert [(h.passage.chunk_id, h.score) for h in found.runs[name][:5]] == [
            (h.passage.chunk_id, h.score) for h in own]
