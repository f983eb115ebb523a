"""Rule-based condensing of follow-up questions, on the topics (titles + synonyms) of a real index."""

from __future__ import annotations

from typing import Any

import pytest

from rag.condense import LLMCondenser, RuleCondenser, TopicFinder
from rag.types import Turn


@pytest.fixture(scope="module")
def rules(tiny_index: Any) -> RuleCondenser:
    titles = {p.title for p in tiny_index.passages}
    return RuleCondenser(TopicFinder(titles, tiny_index.analyzer.lexicon))


COLD = [Turn("普通感冒了怎么办", "多休息[1]。")]


@pytest.mark.parametrize(("history", "question", "expected"), [
    ([], "那要吃什么药", "那要吃什么药"),  # nothing to carry
    (COLD, "那要吃什么药", "普通感冒要吃什么药"),  # elliptical: the topic is carried
    (COLD, "它会自己好吗？", "普通感冒会自己好吗？"),  # pronoun replaced
    (COLD, "这毛病会传染吗", "普通感冒会传染吗"),  # 毛病: the patients' word for a disease
    (COLD, "高血压有什么危害", "高血压有什么危害"),  # a new topic stands alone
    (COLD, "那高血压呢？", "高血压了怎么办"),  # "what about X": the previous question about X
    ([Turn("伤风了怎么办", "")], "需要去医院吗", "伤风需要去医院吗"),  # a synonym of a title is a topic
    ([*COLD, Turn("谢谢", "不客气")], "还要注意什么", "普通感冒还要注意什么"),  # latest turn with a topic
    ([Turn("高血压要注意什么", "")], "那运动方面呢？", "高血压运动方面"),  # an aspect keeps the topic
    ([Turn("高血压要注意什么", ""), Turn("那2型糖尿病呢", "")], "运动方面呢", "2型糖尿病运动方面"),  # carried twice
    ([Turn("孩子伤风了怎么办", "")], "要吃什么药", "孩子伤风要吃什么药"),  # the patient carries over
    ([Turn("孩子伤风了怎么办", "")], "那大人呢", "大人伤风了怎么办"),  # ...unless the follow-up changes it
    ([Turn("嘴里老长溃疡", "")], "会传染吗", "嘴里老长溃疡 会传染吗"),  # no known topic: the question is context
    ([Turn("三岁孩子伤风了怎么办", "")], "那三个月的呢", "三个月的孩子伤风了怎么办"),  # an age changes the patient
])
def test_rule_condenser(rules: RuleCondenser, history: list[Turn], question: str, expected: str) -> None:
    assert rules.condense(question, history) == expected


def test_topics_prefer_the_longest_match(rules: RuleCondenser) -> None:
    assert rules.topics.find("急性心肌梗死和高血压") == ["急性心肌梗死", "高血压"]


def test_llm_rewrite_prompt_is_chimed_format() -> None:
    prompt = LLMCondenser.prompt("那要吃什么药", COLD)
    assert prompt.startswith("[human]:") and prompt.endswith("[bot]:")
    assert "用户：普通感冒了怎么办" in prompt and "用户：那要吃什么药" in prompt
