"""Question intents (rag/intent.py): what an everyday question asks for, part by part."""

from __future__ import annotations

from rag.intent import BY_NAME, INTENTS, detect, parts


def test_everyday_questions_get_their_intent() -> None:
    assert "medicine_use" in {i.name for i in detect("我在吃氨氯地平，可以换药吗")}
    assert "treatment" in {i.name for i in detect("3岁孩子发烧怎么办")}
    assert "cause" in {i.name for i in detect("老是口腔溃疡是怎么回事")}
    assert "when_to_see_doctor" in {i.name for i in detect("咳嗽一个多月了要不要去医院")}
    assert "prevention" in {i.name for i in detect("怎么预防骨质疏松")}
    assert detect("高血压") == ()  # a bare topic asks for nothing in particular


def test_a_question_with_two_asks_has_two_parts() -> None:
    found = parts("糖尿病人早餐吃什么好？能吃水果吗？")
    assert [p.text for p in found] == ["糖尿病人早餐吃什么好", "能吃水果吗"]
    assert all(BY_NAME["diet_lifestyle"] in p.intents for p in found)
    assert "预防与日常管理" in found[0].sections


def test_context_before_the_ask_stays_with_it() -> None:
    found = parts("我爸高血压十年了，平时吃饭要注意什么")
    assert len(found) == 1 and found[0].text.endswith("平时吃饭要注意什么")


def test_the_registry_has_one_entry_per_name() -> None:
    assert len(BY_NAME) == len(INTENTS) == 10
    assert all(i.sections for i in INTENTS)


def test_everyday_wording_of_an_ask() -> None:
    """Patients rarely write 症状 or 预后: what they write instead still shows what they ask."""
    cases = {"手上起了水疱，这是什么毛病": "symptoms", "老人还要打肺炎疫苗吗": "prevention",
             "胆固醇5.8这就算高了吗": "diagnosis_tests", "胃息肉会不会变成癌": "prognosis",
             "膝盖疼有什么办法": "treatment", "吃了感冒药还能再吃止痛药吗": "medicine_use"}
    for question, intent in cases.items():
        assert intent in {i.name for i in detect(question)}, question


def test_context_words_are_not_asks() -> None:
    """What the patient tells ("没啥症状", "打完疫苗", "平时", "吃饭") is not what they ask."""
    assert "symptoms" not in {i.name for i in detect("体检空腹血糖7.3 没啥症状 这就算糖尿病了吗")}
    assert "prevention" not in {i.name for i in detect("宝宝打完疫苗晚上有点发烧 怎么处理")}
    assert "diet_lifestyle" not in {i.name for i in detect("体检说有早搏，平时偶尔心里咯噔一下，这个严重吗")}
    assert "medicine_use" not in {i.name for i in detect("高血压平时吃饭要注意什么")}
    assert "medicine_use" in {i.name for i in detect("我爸在吃坦索罗辛，有什么要注意的")}
    assert "prognosis" in {i.name for i in detect("体检说有早搏，这个严重吗")}
    assert "medicine_use" in {i.name for i in detect("一直在吃奥美拉唑，做检查前需要停吗")}
