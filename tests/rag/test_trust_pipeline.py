"""The trust layer inside RAGPipeline.ask over the tiny index: triage, support, strict, abstention,
calibration and the audit trace, with the real embedder and the extractive generator."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as cli_main
from rag.abstention import CALIBRATION_FILE, Calibration
from rag.pipeline import RAGPipeline, build_generator
from rag.settings import Settings


def pipeline(index: Any, embedder: Any, **overrides: Any) -> RAGPipeline:
    settings = Settings(**overrides)
    return RAGPipeline(index, embedder, build_generator(settings, index), settings)


def test_emergency_advice_comes_before_the_answer(tiny_index: Any, embedder: Any) -> None:
    answer = pipeline(tiny_index, embedder).ask("我爸胸口压着疼，还一直出冷汗")
    assert answer.safety.level == "emergency" and "chest_pain" in answer.safety.signals
    assert answer.answer.startswith("【安全提示】") and "120" in answer.answer.split("\n")[0]
    assert answer.sentences and answer.generator == "extractive"  # the answer itself still follows
    # The tiny index has none of the shipped guide documents: the signal's words find the infarction one, whose
    # text ("胸骨后压榨性疼痛") shares no word with the patient's ("胸口压着疼").
    assert answer.passages[0].passage.doc_id == "mi" and "[1]" in answer.answer


def test_routine_question_has_no_advice_and_supported_sentences(tiny_index: Any, embedder: Any) -> None:
    answer = pipeline(tiny_index, embedder).ask("感冒了怎么办")
    assert answer.safety.level == "routine" and not answer.answer.startswith("【安全提示】")
    # Extractive sentences are copied from the passages they cite, so every one is supported.
    assert [s.label for s in answer.support] == ["supported"] * len(answer.sentences)
    for support in answer.support:
        assert support.evidence is not None and support.evidence.text in answer.passages[
            support.evidence.marker - 1].passage.text


def test_trace_is_logged_without_the_question_and_returned_on_request(tiny_index: Any, embedder: Any,
                                                                     tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    p = pipeline(tiny_index, embedder, audit_log=log)
    plain = p.ask("高血压要注意什么")
    traced = p.ask("高血压要注意什么", trace=True)
    assert plain.trace is None and traced.trace is not None
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    assert len(lines) == 2 and "高血压" not in log.read_text("utf-8")
    entry = lines[1]
    assert entry["index_id"] == tiny_index.index_id and entry["fusion"]["method"] == "minmax"
    assert entry["prompt_sha256"] and entry["prompt_tokens"] > 0 and entry["generator"]["name"] == "extractive"
    assert entry["safety"]["level"] == "routine" and entry["timings"]["total_ms"] > 0
    candidate = entry["candidates"][0]
    assert set(candidate["scores"]) == {"bm25", "dense"} and candidate["ranks"]["dense"] >= 1
    assert entry["question_hmac"] == traced.trace["question_hmac"]
    p_with = pipeline(tiny_index, embedder, audit_log=tmp_path / "q.jsonl", audit_log_questions=True)
    p_with.ask("高血压要注意什么")
    assert json.loads((tmp_path / "q.jsonl").read_text("utf-8"))["question"] == "高血压要注意什么"


def test_audit_line_goes_to_the_logger(tiny_index: Any, embedder: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="chimed_rag.audit"):
        pipeline(tiny_index, embedder).ask("腹泻怎么办")
    records = [r for r in caplog.records if r.name == "chimed_rag.audit"]
    assert len(records) == 1 and "腹泻" not in records[0].getMessage()
    assert json.loads(records[0].getMessage())["candidates"]


def test_abstains_without_calling_the_generator(tiny_index: Any, embedder: Any) -> None:
    # A model that finds every question uncovered: coefficient 0, threshold above sigmoid(0).
    p = pipeline(tiny_index, embedder, abstention_coef=[0.0, 0.0, 0.0, 0.0], abstention_threshold=0.9)
    medical = p.ask("感冒了怎么办", trace=True)
    assert medical.abstention.abstain and medical.abstention.reason == "insufficient_evidence"
    assert medical.generator == "none" and not medical.sentences and "generate_ms" not in medical.timings
    assert "参考资料中没有涵盖" in medical.answer and "医生" in medical.answer
    assert medical.trace["abstention"]["reason"] == "insufficient_evidence"
    assert p.ask("明天北京天气怎么样").abstention.reason == "out_of_scope"


def test_calibrate_fits_thresholds_and_the_pipeline_uses_them(tiny_index: Any, embedder: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    inside = tmp_path / "in.jsonl"
    inside.write_text("".join(json.dumps({"question": q}, ensure_ascii=False) + "\n" for q in (
        "感冒了怎么办", "普通感冒要吃抗生素吗", "血压多少算高血压", "高血压吃盐要注意什么", "心梗有什么症状",
        "心肌梗死胸痛多久", "拉肚子怎么补水", "腹泻什么时候要去医院", "糖尿病诊断标准", "血糖高怎么控制饮食")),
        "utf-8")
    outside = tmp_path / "out.jsonl"
    outside.write_text("".join(json.dumps({"question": q}, ensure_ascii=False) + "\n" for q in (
        "明天北京天气怎么样", "推荐几部科幻电影", "Python怎么读取Excel", "红烧肉怎么做", "股票跌了怎么办",
        "秦始皇哪年统一六国", "怎么考驾照", "笔记本开不了机", "太阳系有几颗行星", "猫不吃猫粮怎么办")), "utf-8")
    monkeypatch.setenv("CHIMED_RAG_INDEX_DIR", str(tiny_index.path))
    out = tmp_path / "cal"
    assert cli_main(["calibrate", "--in-corpus", str(inside), "--out-of-corpus", str(outside),
                     "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["false_abstention"] <= 0.1 and 0 <= report["correct_abstention"] <= 1
    assert {"cv_false_abstention", "cv_correct_abstention"} <= set(report)
    stored = Calibration.load(out)
    assert stored is not None and stored.index_id == tiny_index.index_id and len(stored.coef) == 4
    p = pipeline(tiny_index, embedder, abstention_coef=list(stored.coef),
                 abstention_intercept=stored.intercept, abstention_threshold=stored.threshold)
    assert not p.ask("感冒了怎么办").abstention.abstain
    assert (out / CALIBRATION_FILE).is_file()


def test_calibrate_rejects_a_bad_question_file(tiny_index: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", "utf-8")
    monkeypatch.setenv("CHIMED_RAG_INDEX_DIR", str(tiny_index.path))
    assert cli_main(["calibrate", "--in-corpus", str(bad), "--out", str(tmp_path)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


UNSUPPORTED = "喝浓茶可以彻底治愈这种病。[1]"


def _with_extra_sentence(p: RAGPipeline, extra: str) -> RAGPipeline:
    """The extractive answer plus one more sentence, appended by the generator itself (streamed and whole)."""
    generator: Any = p.generator
    stream, generate = generator.stream, generator.generate
    generator.stream = lambda request: iter([*stream(request), extra])
    generator.generate = lambda request: generate(request) + extra
    return p


@pytest.mark.parametrize("strict", [False, True])
def test_streamed_text_never_shows_what_the_checks_withhold(tiny_index: Any, embedder: Any, strict: bool) -> None:
    p = _with_extra_sentence(pipeline(tiny_index, embedder), UNSUPPORTED)
    items = list(p.ask_stream("感冒了怎么办", strict=strict))
    answer, deltas = items[-1], "".join(str(i) for i in items[:-1])
    assert deltas == answer.answer  # the stream adds up to the answer in both modes
    assert ("彻底治愈" in deltas) is not strict
    if strict:
        assert "严格模式" in answer.answer and "彻底治愈" not in answer.answer
    else:
        assert [s.label for s in answer.support][-1] == "unsupported"


def test_dose_sentences_are_held_back_from_the_stream(tiny_index: Any, embedder: Any) -> None:
    p = _with_extra_sentence(pipeline(tiny_index, embedder), "成人每次服用500毫克，每日3次。")
    items = list(p.ask_stream("感冒药我该吃几片"))
    answer, deltas = items[-1], "".join(str(i) for i in items[:-1])
    assert answer.safety.dose_request and deltas == answer.answer
    assert "500毫克" not in deltas and "剂量" in deltas
