"""Query-side term normalisation: the rule format, matching, expansion, and the shipped table."""

from __future__ import annotations

import pytest

from indexer.errors import CorpusError
from rag.normalise import TermNormaliser, load_normaliser, parse_rules
from rag.settings import Settings

RULES = parse_rules([
    "# comment",
    "说不出话+没劲 半身不遂 => 脑卒中 中风",
    "拉肚子 拉稀 => 腹泻",
    "运动 锻炼 ~> 身体活动",
])


def test_conjunctive_cues_need_every_part() -> None:
    n = TermNormaliser(RULES)
    assert n.terms("我爸突然说不出话，一边手脚没劲") == ["脑卒中", "中风"]
    assert n.terms("说不出话") == []  # speech alone is not the stroke pattern
    assert n.terms("半身不遂怎么康复") == ["脑卒中", "中风"]


def test_expansion_keeps_the_question_and_adds_only_missing_terms() -> None:
    n = TermNormaliser(RULES)
    assert n.expand("孩子拉肚子了") == "孩子拉肚子了 腹泻"
    assert n.expand("拉肚子是腹泻吗") == "拉肚子是腹泻吗"
    assert n.expand("今天天气好") == "今天天气好"


def test_aspect_rules_widen_the_search_but_name_no_topic() -> None:
    n = TermNormaliser(RULES)
    assert n.terms("糖尿病能运动吗") == ["身体活动"]
    assert n.topics("糖尿病能运动吗") == []
    assert n.topics("一直拉稀") == ["腹泻"]
    assert n.cue_spans("说不出话还没劲") == ["说不出话", "没劲"]


@pytest.mark.parametrize("line", ["拉肚子 腹泻", "=> 腹泻", "拉肚子 =>", "a => b => c", "a => b ~> c"])
def test_malformed_rules_are_reported_with_their_line(line: str) -> None:
    with pytest.raises(CorpusError, match=r"table:1"):
        parse_rules([line], "table")


def test_missing_table_means_no_normalisation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_normaliser(tmp_path / "none.txt").rules == () and load_normaliser(None).rules == ()


def test_shipped_table_maps_everyday_wording() -> None:
    n = load_normaliser(Settings().colloquial)
    assert len(n.rules) >= 150
    assert "脑卒中" in n.terms("奶奶嘴歪了，半边没劲")
    assert "腹泻" in n.terms("宝宝拉肚子一天五六次")
    assert "胸痛" in n.terms("心口疼得厉害")
    assert "发热" in n.terms("发烧三天了")
    assert "阻塞性睡眠呼吸暂停" in n.terms("晚上打呼噜很响")


def test_condenser_takes_topics_from_patient_wording() -> None:
    from rag.condense import RuleCondenser, TopicFinder
    from rag.types import Turn

    rules = RuleCondenser(TopicFinder({"缺血性脑卒中"}, normaliser=TermNormaliser(RULES)))
    history = [Turn("我爸突然说不出话，一边手脚没劲", "")]
    assert rules.condense("能治好吗", history) == "脑卒中 中风能治好吗"
    assert rules.condense("那运动方面呢", history) == "脑卒中 中风运动方面"


def test_the_phrase_index_finds_exactly_the_rules_a_full_scan_finds() -> None:
    """``matching`` looks only at rules whose phrases occur; it must agree with checking every rule."""
    shipped = load_normaliser(Settings().colloquial)
    texts = ["我爸突然说不出话，一边手脚没劲", "嘴歪了 半边没劲", "血糖高吃什么水果", "拉肚子三天了", "头疼", "",
             *(f"{r.cues[0][0]}和{r.cues[-1][-1]}" for r in shipped.rules[::7])]
    for text in texts:
        assert shipped.matching(text) == [r for r in shipped.rules if r.matches(text)], text
    assert shipped.matching("说不出话+没劲") and not shipped.matching("今天天气不错")


def test_traditional_and_cantonese_wording_meet_simplified_cues() -> None:
    n = TermNormaliser(RULES)
    assert n.terms("我爸突然說不出話，一邊手腳沒勁") == ["脑卒中", "中风"]  # traditional characters
    assert n.terms("我爸突然講唔出話，一邊手腳冇勁") == []  # 講唔出話 is not the cue's 说不出话 ...
    assert n.terms("我爸突然說唔出話，一邊手腳冇勁") == ["脑卒中", "中风"]  # ... 說唔出話 and 冇勁 are
    # The question keeps its own characters; only the missing canonical terms are appended.
    assert n.expand("細路拉肚子") == "細路拉肚子 腹泻"
