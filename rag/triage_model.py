"""A learned backstop for the red-flag rules: logistic regression on the question's query embedding.

Regex rules are precise but only know the wordings they were written for: on 70 cases written later by
someone who never saw them they caught 15 of 35 emergencies. The embedding model generalises to new
wordings ("嘴歪了 话说不利索", "吸不进气") but cannot say which red flag it saw, so a question only it
flags gets the generic "see a doctor today" level (`urgent`, signal ``possible_red_flag``).

The threshold is fitted by k-fold cross-validation on the training cases: the lowest threshold whose
out-of-fold false-alarm rate stays within the target, i.e. as much recall as that budget allows. A second,
higher threshold, held to a much smaller false-alarm budget, raises the level to `emergency`: a message the
model is very sure about ("人倒在地上叫不应") should not be told merely to see a doctor today, even if no rule
knows its wording. It also lifts a rule's `urgent` to `emergency`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.abstention import fit_logistic

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "triage_model.json"
SIGNAL = "possible_red_flag"
# The labelled case files (tests/data/) the shipped model is fitted on; blind sets B and E are never among them.
TRAINING_SETS = ("triage.jsonl", "triage_blind_a.jsonl", "triage_batch_c.jsonl", "triage_batch_d.jsonl",
                 "triage_batch_f.jsonl")
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TriageModel:
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    embedding: dict[str, Any]  # model id and dimension the coefficients belong to
    rates: dict[str, float] = field(default_factory=dict)
    emergency_threshold: float | None = None  # from this probability on, the level is `emergency`

    def probability(self, vector: np.ndarray) -> float:
        return float(1.0 / (1.0 + np.exp(-(float(vector @ np.asarray(self.coef)) + self.intercept))))

    def fits(self, embedding: dict[str, Any]) -> bool:
        return all(embedding.get(k) == v for k, v in self.embedding.items())

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> TriageModel | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(data["coef"]), data["intercept"], data["threshold"], data["embedding"], data["rates"],
                   data.get("emergency_threshold"))

    def level(self, vector: np.ndarray) -> str:
        """`emergency`, `urgent` or `routine` for one query vector."""
        p = self.probability(vector)
        if self.emergency_threshold is not None and p >= self.emergency_threshold:
            return "emergency"
        return "urgent" if p >= self.threshold else "routine"


@dataclass(frozen=True)
class FitConfig:
    l2: float = 0.1  # chosen by cross-validation among 0.01 / 0.1 / 1 (the most recall at the target)
    target_false_alarm: float = 0.04  # the rules spend about 1 % of the 5 % budget
    emergency_false_alarm: float = 0.01
    folds: int = 5
    thresholds: tuple[float, ...] = tuple(round(0.2 + 0.05 * i, 2) for i in range(16))  # 0.2 .. 0.95


def fit(texts: Sequence[str], alarms: Sequence[bool], embed: Embed, embedding: dict[str, Any],
        covered: Sequence[bool] | None = None, config: FitConfig | None = None) -> TriageModel:
    """Fit on labelled questions; ``covered`` marks negatives the model is never asked about (the rules'
    general-knowledge gate), so they do not count as its false alarms."""
    config = config or FitConfig()
    x = np.asarray(embed(list(texts)), dtype=np.float64)
    y = np.asarray(alarms, dtype=float)
    asked = ~np.asarray(covered if covered is not None else [False] * len(y), dtype=bool)
    fold = np.arange(len(y)) % config.folds
    np.random.default_rng(0).shuffle(fold)
    out_of_fold = np.zeros(len(y))
    for f in range(config.folds):
        coef, intercept = fit_logistic(x[fold != f], y[fold != f], l2=config.l2)
        out_of_fold[fold == f] = 1.0 / (1.0 + np.exp(-(x[fold == f] @ coef + intercept)))
    threshold, rates = _pick_threshold(out_of_fold, y.astype(bool), asked, config.thresholds,
                                       config.target_false_alarm)
    emergency, high = _pick_threshold(out_of_fold, y.astype(bool), asked, config.thresholds,
                                      config.emergency_false_alarm)
    coef, intercept = fit_logistic(x, y, l2=config.l2)
    return TriageModel(tuple(float(c) for c in coef), float(intercept), threshold, embedding,
                       rates | {f"emergency_{k}": v for k, v in high.items()}
                       | {"cases": len(y), "alarms": int(y.sum())}, max(emergency, threshold))


def _pick_threshold(p: np.ndarray, y: np.ndarray, asked: np.ndarray, thresholds: Sequence[float],
                    target: float) -> tuple[float, dict[str, float]]:
    for threshold in thresholds:
        flagged = (p >= threshold) & asked
        false_alarm = float(flagged[~y].mean())
        if false_alarm <= target:
            return threshold, {"cv_false_alarm": false_alarm, "cv_recall": float(flagged[y].mean())}
    raise ValueError("no threshold meets the false-alarm target; add training cases")
