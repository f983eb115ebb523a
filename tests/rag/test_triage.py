"""Red-flag triage on the project's triage set (tests/data/triage.jsonl) and on single behaviours."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rag.triage import CRISIS_HOTLINE, Safety, Triage, mentions_dose
from tests.conftest import ROOT

CASES = [json.loads(line) for line in (ROOT / "tests" / "data" / "triage.jsonl").read_text("utf-8").splitlines()
         if line.strip()]
TRIAGE = Triage()


def test_triage_set_is_large_and_balanced() -> None:
    positives = [c for c in CASES if c["level"] != "routine"]
    assert len(CASES) >= 150
    assert 0.4 <= len(positives) / len(CASES) <= 0.6


def test_recall_and_false_alarm_rate_meet_the_goal() -> None:
    positives = [c for c in CASES if c["level"] != "routine"]
    negatives = [c for c in CASES if c["level"] == "routine"]
    found = [c for c in positives if TRIAGE.assess(c["text"]).level != "routine"]
    alarms = [c["text"] for c in negatives if TRIAGE.assess(c["text"]).level != "routine"]
    recall, false_alarms = len(found) / len(positives), len(alarms) / len(negatives)
    exact = sum(TRIAGE.assess(c["text"]).level == c["level"] for c in CASES) / len(CASES)
    print(f"\ntriage: {len(positives)} positives, {len(negatives)} negatives, recall={recall:.3f} "
          f"false_alarm={false_alarms:.3f} level_accuracy={exact:.3f}")
    assert recall >= 0.95, [c["text"] for c in positives if c not in found]
    assert false_alarms <= 0.05, alarms


def test_each_positive_names_its_red_flag() -> None:
    missing = [(c["text"], TRIAGE.assess(c["text"]).signals) for c in CASES
               if c.get("signal") and c["signal"] not in TRIAGE.assess(c["text"]).signals]
    assert len(missing) <= 0.05 * len(CASES), missing


@pytest.mark.parametrize(("text", "level"), [
    ("没有胸痛", "routine"),
    ("胸口疼还出冷汗", "emergency"),
    ("我爸突然说不出话", "emergency"),
    ("中风有哪些早期症状", "routine"),
    ("热死了", "routine"),
])
def test_negation_third_person_and_general_questions(text: str, level: str) -> None:
    assert TRIAGE.assess(text).level == level


def test_self_harm_gets_the_crisis_hotline_and_emergency_numbers() -> None:
    safety = TRIAGE.assess("我不想活了")
    assert safety.level == "emergency" and "self_harm" in safety.signals
    assert CRISIS_HOTLINE == "12356" and "12356" in safety.advice
    assert "120" in safety.advice and "110" in safety.advice and "立即" in safety.advice


def test_emergency_advice_says_call_120() -> None:
    safety = TRIAGE.assess("奶奶嘴巴歪了，半边身子没劲")
    assert safety.level == "emergency" and "120" in safety.advice and "急诊" in safety.advice


def test_dose_requests_are_detected_and_referred() -> None:
    dose_cases = [c for c in CASES if "dose_request" in c]
    assert len(dose_cases) >= 10
    for case in dose_cases:
        assert TRIAGE.assess(case["text"]).dose_request is case["dose_request"], case
    safety = TRIAGE.assess("阿莫西林我该吃几片")
    assert safety.level == "routine" and "医生" in safety.advice and "药师" in safety.advice


def test_safety_is_frozen_and_serialisable() -> None:
    safety = TRIAGE.assess("孩子误服了降压药")
    assert safety == Safety("emergency", ("poisoning",), safety.advice)
    with pytest.raises(dataclasses.FrozenInstanceError):
        safety.level = "routine"  # type: ignore[misc]
    assert json.loads(json.dumps(safety.to_json()))["signals"] == ["poisoning"]


def test_dose_amounts_are_recognised() -> None:
    assert mentions_dose("成人每次 0.5 g，每日 3 次")
    assert mentions_dose("每次500毫克")
    assert not mentions_dose("每天食盐不超过五克以下为宜，注意休息")
