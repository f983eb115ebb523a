"""Calibrated abstention: answer "the reference texts do not cover this" when retrieval evidence is weak.

Evidence is a few retrieval features — the best dense cosine, the best BM25 score per query token,
how much the BM25 and dense top lists agree, and whether the question looks medical at all. A
logistic model over them, fitted by ``chimed-rag calibrate`` on in-corpus and out-of-corpus
questions, gives the probability that the corpus covers the question; below the fitted threshold
the pipeline abstains without calling the generator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.errors import IndexerError
from indexer.index_dir import CALIBRATION_FILE
from rag.types import Hit

FEATURES = ("dense_top", "bm25_per_token", "agreement", "medical")
ABSTAIN_MESSAGE = ("参考资料中没有涵盖这个问题的内容，本系统无法给出有依据的回答。"
                   "建议咨询医生或到正规医疗机构就诊，获取针对您情况的专业意见。")
OUT_OF_SCOPE_MESSAGE = ("这个问题似乎不属于医学健康范围，本系统只根据医学参考资料回答健康相关问题。"
                        "如有身体不适，请咨询医生。")
# Words that mark a question as medical even when the index lexicon does not hold them.
_MEDICAL = re.compile(
    r"病|症|痛|疼|药|医|诊|治|血|癌|瘤|炎|感冒|烧|热|咳|痒|肿|孕|经期|月经|体检|检查|身体|健康|营养|饮食|睡|"
    r"晕|恶心|呕|吐|泻|拉肚子|便|尿|疫苗|过敏|皮肤|眼|牙|耳|鼻|喉|嗓|心|肺|肝|肾|胃|肠|骨|关节|宝宝|婴儿|"
    r"减肥|体重|打呼噜|憋气|伤|疤|痘|疹|斑|癣|麻|抽|喘|脱发|视力|听力|手术|住院|挂号|激素|维生素|补|疗")


@dataclass(frozen=True)
class AbstentionConfig:
    coef: tuple[float, ...] | None = None  # one per FEATURES entry; None: never abstain
    intercept: float = 0.0
    threshold: float | None = None
    probe_k: int = 5  # how many top hits of each retriever the features look at


@dataclass(frozen=True)
class Abstention:
    abstain: bool
    reason: str | None  # insufficient_evidence | out_of_scope
    probability: float | None
    features: dict[str, float] = field(default_factory=dict, hash=False, compare=False)

    @property
    def message(self) -> str:
        return OUT_OF_SCOPE_MESSAGE if self.reason == "out_of_scope" else ABSTAIN_MESSAGE

    def to_json(self) -> dict[str, Any]:
        return {"abstain": self.abstain, "reason": self.reason, "probability": self.probability,
                "features": self.features}


def looks_medical(question: str, lexicon_words: frozenset[str] = frozenset()) -> bool:
    return bool(_MEDICAL.search(question)) or any(w in question for w in lexicon_words if len(w) > 1)


class Abstainer:
    """Decides from one retrieval's member runs (``Retrieval.runs``): no search of its own."""

    def __init__(self, tokenize: Callable[[str], list[str]], lexicon_words: frozenset[str] = frozenset(),
                 config: AbstentionConfig | None = None) -> None:
        self.tokenize = tokenize
        self.lexicon_words = lexicon_words
        self.config = config or AbstentionConfig()

    def features(self, question: str, runs: Mapping[str, Sequence[Hit]]) -> dict[str, float]:
        k = self.config.probe_k
        bm25_hits, dense_hits = list(runs.get("bm25", ()))[:k], list(runs.get("dense", ()))[:k]
        bm25_docs = {h.passage.doc_id for h in bm25_hits}
        dense_docs = {h.passage.doc_id for h in dense_hits}
        tokens = max(1, len(self.tokenize(question)))
        return {
            "dense_top": max((h.score for h in dense_hits), default=0.0),
            "bm25_per_token": max((h.score for h in bm25_hits), default=0.0) / tokens,
            "agreement": len(bm25_docs & dense_docs) / max(1, len(dense_docs)),
            "medical": float(looks_medical(question, self.lexicon_words)),
        }

    def probability(self, features: dict[str, float]) -> float | None:
        if self.config.coef is None:
            return None
        z = self.config.intercept + sum(c * features[name] for c, name in zip(self.config.coef, FEATURES))
        return float(1.0 / (1.0 + np.exp(-z)))

    def decide(self, question: str, runs: Mapping[str, Sequence[Hit]]) -> Abstention:
        feats = self.features(question, runs)
        p = self.probability(feats)
        if p is None or self.config.threshold is None or p >= self.config.threshold:
            return Abstention(False, None, p, feats)
        reason = "insufficient_evidence" if feats["medical"] else "out_of_scope"
        return Abstention(True, reason, p, feats)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 5000,
                 lr: float = 0.5) -> tuple[np.ndarray, float]:
    """Plain L2-regularised logistic regression by gradient descent (features are standardised inside)."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * w)
        b -= lr * float(np.mean(p - y))
    coef = w / std
    return coef, b - float(coef @ mean)


def threshold_for(probabilities: np.ndarray, max_false_abstention: float) -> float:
    """The split-conformal threshold: abstaining below the k-th smallest answerable probability, with
    k = floor(target * (n + 1)), abstains on a new answerable question with probability at most the target.

    (Abstaining on the target share of the calibration questions themselves, k = floor(target * n) + 1,
    overshoots out of sample by about 1 / (n + 1): 1.4 points on the 70 colloquial questions.)
    """
    ordered = np.sort(probabilities)
    k = int(np.floor(max_false_abstention * (len(ordered) + 1)))
    if k < 1:  # too few questions to abstain on any at this target
        return float(np.nextafter(ordered[0], -np.inf)) if len(ordered) else 0.0
    return float(ordered[min(k, len(ordered)) - 1])


class CalibrationError(IndexerError):
    """A calibration.json that cannot be read (the message names the file)."""


@dataclass(frozen=True)
class Calibration:
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    index_id: str
    target_false_abstention: float
    rates: dict[str, float]

    def config(self, probe_k: int = 5) -> AbstentionConfig:
        return AbstentionConfig(self.coef, self.intercept, self.threshold, probe_k)

    def dumps(self) -> str:
        return json.dumps({"features": FEATURES, **asdict(self)}, ensure_ascii=False, indent=2)

    def save(self, directory: Path) -> Path:
        Path(directory).mkdir(parents=True, exist_ok=True)
        path = Path(directory) / CALIBRATION_FILE
        path.write_text(self.dumps(), "utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> Calibration | None:
        path = Path(directory) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            coef = tuple(float(c) for c in data["coef"])
            if len(coef) != len(FEATURES):
                raise ValueError(f"{len(coef)} coefficients for {len(FEATURES)} features")
            return cls(coef, float(data["intercept"]), float(data["threshold"]), str(data["index_id"]),
                       float(data["target_false_abstention"]), dict(data["rates"]))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: not a calibration file ({exc}); refit with 'chimed-rag calibrate'") \
                from exc


def calibrate(features: Callable[[Sequence[str]], list[dict[str, float]]], answerable: Sequence[str],
              unanswerable: Sequence[str], index_id: str, target: float = 0.05, folds: int = 5,
              groups: Sequence[str] | None = None, show_progress: bool = False) -> Calibration:
    """Fit the model on all questions, and estimate its rates out of sample with k-fold cross-validation.

    ``groups`` names the source of each answerable question; the threshold then meets the target in
    every group, so that many easy questions (corpus titles) cannot hide abstention on hard ones.
    """
    x = np.array([[row[f] for f in FEATURES] for row in _scored(features, [*answerable, *unanswerable],
                                                                 show_progress)])
    y = np.array([1.0] * len(answerable) + [0.0] * len(unanswerable))
    coef, intercept = fit_logistic(x, y)
    p = 1.0 / (1.0 + np.exp(-(x @ coef + intercept)))
    names = np.array(list(groups) if groups is not None else ["all"] * len(answerable))
    p_in = p[y == 1]
    threshold = min(threshold_for(p_in[names == g], target) for g in set(names))
    per_group = {f"false_abstention_{g}": float(np.mean(p_in[names == g] < threshold)) for g in sorted(set(names))}
    rates = {"false_abstention": float(np.mean(p[y == 1] < threshold)), **per_group,
             "correct_abstention": float(np.mean(p[y == 0] < threshold)),
             **_cross_validated(x, y, target, folds, names, show_progress), "answerable": len(answerable),
             "unanswerable": len(unanswerable)}
    return Calibration(tuple(float(c) for c in coef), float(intercept), threshold, index_id, target, rates)


def _scored(features: Callable[[Sequence[str]], list[dict[str, float]]], questions: Sequence[str],
            show_progress: bool, batch: int = 32) -> list[dict[str, float]]:
    """The features of every question; in batches under a labelled bar (retrieval is the slow part)."""
    if not show_progress:
        return features(questions)
    rows: list[dict[str, float]] = []
    with tqdm(total=len(questions), desc="calibration: questions scored", unit="question",
              disable=not show_progress) as bar:
        for start in range(0, len(questions), batch):
            rows += features(questions[start : start + batch])
            bar.update(len(questions[start : start + batch]))
    return rows


def _cross_validated(x: np.ndarray, y: np.ndarray, target: float, folds: int,
                     names: np.ndarray, show_progress: bool = False) -> dict[str, float]:
    fold = np.arange(len(y)) % folds
    rng = np.random.default_rng(0)
    rng.shuffle(fold)
    abstained = np.zeros(len(y), dtype=bool)
    for f in tqdm(range(folds), desc="calibration: folds", unit="fold", disable=not show_progress):
        train, test = fold != f, fold == f
        coef, intercept = fit_logistic(x[train], y[train])
        p_train = 1.0 / (1.0 + np.exp(-(x[train] @ coef + intercept)))
        train_in = p_train[y[train] == 1]
        train_names = names[train[: len(names)]]
        threshold = min(threshold_for(train_in[train_names == g], target) for g in set(train_names))
        abstained[test] = (x[test] @ coef + intercept) < np.log(threshold / (1 - threshold) + 1e-12)
    cv_in = abstained[y == 1]
    return {"cv_false_abstention": float(np.mean(cv_in)),
            **{f"cv_false_abstention_{g}": float(np.mean(cv_in[names == g])) for g in sorted(set(names))},
            "cv_correct_abstention": float(np.mean(abstained[y == 0]))}
