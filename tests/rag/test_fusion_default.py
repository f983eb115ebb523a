"""z-score fusion, and the hybrid default that the split-A/split-B check (bench/tune_fusion.py) left in place."""

from __future__ import annotations

import pytest

from rag.fusion import FUSIONS, zscore_fuse, zscore_normalize
from rag.retrievers import HybridConfig
from rag.settings import Settings


def test_zscore_normalize() -> None:
    z = zscore_normalize({"a": 1.0, "b": 2.0, "c": 3.0})
    assert z["b"] == pytest.approx(0.0) and z["c"] == pytest.approx(-z["a"]) and z["c"] == pytest.approx(1.2247449)
    assert zscore_normalize({"a": 5.0, "b": 5.0}) == {"a": 0.0, "b": 0.0}
    assert zscore_normalize({}) == {}


def test_zscore_fuse_gives_unscored_candidates_the_runs_floor() -> None:
    runs = {"bm25": {"x": 10.0, "y": 0.0}, "dense": {"y": 0.9, "z": 0.5, "w": 0.1}}
    fused = zscore_fuse(runs, {"bm25": 0.5, "dense": 0.5})
    assert set(fused) == {"x", "y", "z", "w"}
    # "z" and "w" were not found by BM25: they get BM25's lowest z-score (-1), not its mean (0).
    assert fused["z"] == pytest.approx(0.5 * -1.0 + 0.5 * zscore_normalize(runs["dense"])["z"])
    assert max(fused, key=fused.__getitem__) == "y"  # first on dense, and BM25 found it too
    assert FUSIONS["zscore"](runs, {"bm25": 0.5, "dense": 0.5}, 60) == fused
    HybridConfig(fusion="zscore")


def test_default_stays_minmax_and_zscore_is_selectable(monkeypatch: pytest.MonkeyPatch) -> None:
    # z-score 0.3 won split A but lost 0.004 nDCG@10 on toyhom-qa's split B: not the default.
    default = Settings().hybrid_config()
    assert (default.fusion, default.weights) == ("minmax", (0.5, 0.5))
    monkeypatch.setenv("CHIMED_RAG_FUSION", "zscore")
    monkeypatch.setenv("CHIMED_RAG_BM25_WEIGHT", "0.3")
    tuned = Settings().hybrid_config()
    assert tuned.fusion == "zscore" and tuned.weights == pytest.approx((0.3, 0.7))
