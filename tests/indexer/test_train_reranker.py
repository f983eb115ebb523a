"""`chimed-rag train reranker` end to end on a tiny JSONL (a few steps; the real run is never part of CI), then
the adapter merged into a CrossEncoder folder and used as the rerank stage's model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main
from indexer import e5_adapters
from indexer.train_reranker import RerankTrainConfig, sample_judged
from rag.rerank import CrossEncoderReranker, RerankConfig
from rag.settings import Settings

TOPICS = ["高血压", "糖尿病", "感冒", "胃炎", "哮喘", "贫血", "失眠", "肺炎"]


def _tiny_data(root: Path) -> Path:
    graded, answers = [], []
    for topic in TOPICS:
        graded += [{"query": f"{topic}病因", "positive": f"{topic}的病因和发病机制", "label": 3},
                   {"query": f"{topic}病因", "positive": f"{topic}医院排名", "label": 1},
                   {"query": f"{topic}病因", "positive": f"{topic}的费用", "label": 0}]
        answers.append({"query": f"{topic}怎么治疗", "positive": f"{topic}的治疗以药物为主", "label": 1})
    (root / "retrieval").mkdir(parents=True)
    for name, rows in (("kuake-qtr-train.jsonl", graded), ("huatuo-llama-data.jsonl", answers)):
        (root / "retrieval" / name).write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                                               encoding="utf-8")
    return root


def test_judged_pairs_follow_the_annotators_and_pair_answers_with_a_foreign_one(tmp_path: Path) -> None:
    data = _tiny_data(tmp_path / "data")
    judged = sample_judged(RerankTrainConfig(data=data, out=tmp_path / "o", graded_pairs=48, answer_pairs=14))
    graded = [j for j in judged if j.source == "kuake-qtr-train.jsonl"]
    assert len(graded) == 24  # every graded row (half of 48 per graded source; cmedir is absent)
    assert all(j.relevant == j.passage.endswith("病因和发病机制") for j in graded)
    answers = [j for j in judged if j.source == "huatuo-llama-data.jsonl"]  # its share: 1,100 / 1,900 of 14
    assert sum(j.relevant for j in answers) == 8 and sum(not j.relevant for j in answers) == 8
    for j in answers:  # a negative is another query's answer, never the query's own
        assert j.relevant == (j.passage.removesuffix("的治疗以药物为主") == j.query.removesuffix("怎么治疗"))


def test_train_reranker_smoke_and_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = _tiny_data(tmp_path / "data"), tmp_path / "out"
    rc = main(["train", "reranker", "--data", str(data), "--out", str(out), "--graded-pairs", "48",
               "--answer-pairs", "14", "--batch-size", "8", "--max-length", "32", "--lora-r", "4"])
    assert rc == 0
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["pairs"] == 40 and summary["relevant"] == 16 and summary["steps"] >= 5
    adapter = out / "adapter"
    assert all((adapter / name).exists() for name in e5_adapters.ADAPTER_FILES)
    e5_adapters.write_manifest(adapter)
    folder = e5_adapters.ensure_reranker_folder(adapter, Settings().cache_dir)
    assert (folder / "modules.json").exists()
    assert e5_adapters.ensure_reranker_folder(adapter, Settings().cache_dir) == folder  # cached, not rebuilt
    reranker = CrossEncoderReranker(RerankConfig(str(folder)))
    scores = reranker.model.predict([("感冒病因", "感冒的病因和发病机制"), ("感冒病因", "贫血医院排名")])
    assert scores.shape == (2,) and float(scores[0]) != float(scores[1])  # the trained head, not a constant
    # A tampered adapter is refused, never silently merged.
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(e5_adapters.AdapterIntegrityError):
        e5_adapters.ensure_reranker_folder(adapter, Settings().cache_dir)
