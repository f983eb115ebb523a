"""Score fusion of several retrievers' candidate lists."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)  # a candidate key: chunk ids in the pipeline


def minmax_normalize(scores: Mapping[K, float]) -> dict[K, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return {key: 1.0 for key in scores}
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def minmax_fuse(runs: Mapping[str, Mapping[K, float]], weights: Mapping[str, float]) -> dict[K, float]:
    """Weighted sum of min-max normalised scores; a candidate a retriever did not score gets 0 from it."""
    fused: dict[K, float] = {}
    for name, scores in runs.items():
        weight = weights.get(name, 0.0)
        for key, value in minmax_normalize(scores).items():
            fused[key] = fused.get(key, 0.0) + weight * value
    return fused


def zscore_normalize(scores: Mapping[K, float]) -> dict[K, float]:
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if std == 0.0:
        return {key: 0.0 for key in scores}
    return {key: (value - mean) / std for key, value in scores.items()}


def zscore_fuse(runs: Mapping[str, Mapping[K, float]], weights: Mapping[str, float]) -> dict[K, float]:
    """Weighted sum of z-scores (each run centred on its own candidates' mean, in units of their spread);
    a candidate a retriever did not score gets that run's lowest z-score, not 0 (which would be its mean)."""
    fused: dict[K, float] = {}
    normalized = {name: zscore_normalize(scores) for name, scores in runs.items()}
    keys = {key for scores in normalized.values() for key in scores}
    for name, scores in normalized.items():
        weight = weights.get(name, 0.0)
        floor = min(scores.values(), default=0.0)
        for key in keys:
            fused[key] = fused.get(key, 0.0) + weight * scores.get(key, floor)
    return fused


def rrf_fuse(runs: Mapping[str, Mapping[K, float]], weights: Mapping[str, float], k: int = 60) -> dict[K, float]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank)."""
    fused: dict[K, float] = {}
    for name, scores in runs.items():
        weight = weights.get(name, 0.0)
        ranked = sorted(scores, key=lambda key: scores[key], reverse=True)
        for rank, key in enumerate(ranked, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


# The one registry of fusion methods: name -> f(runs, weights, rrf_k).
FUSIONS: dict[str, Callable[[Mapping[str, Mapping[str, float]], Mapping[str, float], int], dict[str, float]]] = {
    "minmax": lambda runs, weights, _k: minmax_fuse(runs, weights),
    "zscore": lambda runs, weights, _k: zscore_fuse(runs, weights),
    "rrf": rrf_fuse,
}
