"""Red-flag triage on the project's triage sets and on single behaviours.

tests/data/triage.jsonl (210 cases) was written together with the rules; triage_blind_a.jsonl (170) and
triage_blind_b.jsonl (70) were written later by someone who never saw them. Set A was then used to
improve the rules and to fit the learned backstop; set B is only ever measured."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from rag.triage import CRISIS_HOTLINE, Safety, Triage, is_general_question, mentions_dose
from rag.triage_model import DEFAULT_PATH, TriageModel, fit
from tests.conftest import ROOT


def _cases(*names: str) -> list[dict]:
    return [json.loads(line) for name in names
            for line in (ROOT / "tests" / "data" / name).read_text("utf-8").splitlines() if line.strip()]


CASES = _cases("triage.jsonl", "triage_blind_a.jsonl")
BLIND = _cases("triage_blind_b.jsonl")
TRIAGE = Triage()


def _rates(triage: Triage, cases: list[dict]) -> tuple[float, float]:
    flagged = [triage.assess(c["text"]).level != "routine" for c in cases]
    alarms = [c["level"] != "routine" for c in cases]
    recall = sum(f and a for f, a in zip(flagged, alarms)) / sum(alarms)
    return recall, sum(f and not a for f, a in zip(flagged, alarms)) / (len(cases) - sum(alarms))


@pytest.mark.parametrize("cases", [CASES, BLIND], ids=["train", "blind"])
def test_triage_sets_are_large_and_balanced(cases: list[dict]) -> None:
    positives = [c for c in cases if c["level"] != "routine"]
    assert len(cases) >= 70
    assert 0.4 <= len(positives) / len(cases) <= 0.6
    assert len({c["text"] for c in CASES} & {c["text"] for c in BLIND}) == 0


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
    # Past, hypothetical and resolved clauses, figures of speech, declared jokes: nothing happening now.
    ("去年中过风，现在康复训练怎么做", "routine"),
    ("孩子误吞东西的话家长第一时间该做什么", "routine"),
    ("宝宝发烧三天退了以后出了红疹子", "routine"),
    ("气得我心口疼", "routine"),
    ("这道题难得我想死", "routine"),
    ("不想活了哈哈 开玩笑的", "routine"),
    # ... but not when the words only look alike.
    ("这是我从来没有过的头痛，突然炸开一样", "urgent"),
    ("每次吃饭之前胸口疼还出冷汗", "emergency"),
    ("吃了药好了一点，但现在又胸口疼还出冷汗", "emergency"),
    ("我爸洗澡很久，出来头晕想吐站不稳，家里是燃气热水器", "emergency"),
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


def test_blind_set_rules_alone_and_with_the_learned_backstop(embedder: Any) -> None:
    """Regression guard on the 70 blind cases (measured, never tuned on): see the numbers printed."""
    model = TriageModel.load(DEFAULT_PATH)
    assert model is not None and model.fits(embedder.describe())
    rules = _rates(TRIAGE, BLIND)
    both = _rates(Triage(model=model, embed=embedder.embed_queries), BLIND)
    print(f"\nblind triage: rules recall={rules[0]:.3f} false_alarm={rules[1]:.3f}; "
          f"rules+model recall={both[0]:.3f} false_alarm={both[1]:.3f}")
    assert rules[0] >= 0.40 and rules[1] <= 0.10
    assert both[0] >= 0.70 and both[1] <= 0.25


def test_the_shipped_model_is_what_fit_produces(embedder: Any) -> None:
    shipped = TriageModel.load(DEFAULT_PATH)
    assert shipped is not None
    texts = [c["text"] for c in CASES]
    description = embedder.describe()
    refit = fit(texts, [c["level"] != "routine" for c in CASES], embedder.embed_queries,
                {"model": description["model"], "dimension": description["dimension"]},
                covered=[is_general_question(t) for t in texts])
    assert refit.threshold == shipped.threshold and refit.rates["cv_false_alarm"] <= 0.05
    np.testing.assert_allclose(refit.coef, shipped.coef, atol=1e-3)


def test_a_model_only_flag_is_urgent_with_hedged_advice(embedder: Any) -> None:
    model = TriageModel.load(DEFAULT_PATH)
    text = "早上起来一只耳朵突然听不见了还嗡嗡响"  # sudden hearing loss: no rule knows it
    assert TRIAGE.assess(text).level == "routine"
    safety = Triage(model=model, embed=embedder.embed_queries).assess(text)
    assert safety.level == "urgent" and safety.signals == ("possible_red_flag",)
    assert "可能需要尽快就医" in safety.advice and "120" in safety.advice
    # General-knowledge questions never reach the model; a model for another embedder is not used.
    assert Triage(model=model, embed=embedder.embed_queries).assess("中风有哪些先兆").level == "routine"
    assert model is not None and not model.fits({"model": "BAAI/bge-small-zh-v1.5", "dimension": 512})

