"""Condense a follow-up question and its conversation into a standalone query for retrieval.

The conversation still goes into the ChiMed prompt as it is; only retrieval uses the condensed query,
because "那要吃什么药" retrieves nothing useful without the topic of the earlier turns.

* :class:`RuleCondenser` (no LLM configured): topics are the titles of the indexed documents and their
  lexicon synonyms; an elliptical follow-up gets the latest topic of the conversation
  ("感冒了怎么办" → "那要吃什么药" ⇒ "感冒要吃什么药"), and "那X呢" asks the previous question about X.
* :class:`LLMCondenser` (an LLM generator configured): the generator rewrites the question with a
  ChiMed-format prompt; an empty or runaway rewrite falls back to the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from indexer.lexicon import Lexicon
from rag.prompt import BOT, HUMAN, sanitize
from rag.protocols import GenerationRequest, Generator
from rag.types import Turn

# A follow-up that leans on the conversation: opens with a connective or refers back with a pronoun.
_LEADING_CUE = re.compile(r"^(?:那么|那|还有|另外|然后|所以)[，,、\s]*")
_PRONOUN = re.compile(r"这个病|这种病|这病|该病|这种情况|这个情况|它")
# "那高血压呢？" asks the previous question again about another topic.
_WHAT_ABOUT = re.compile(r"^(?:那么|那)?\s*(?P<topic>.+?)\s*(?:呢|怎么样|如何)[？?。\s]*$")

REWRITE_INSTRUCTION = (
    "请把对话中用户的最后一个问题改写成一个不依赖上下文、可以单独理解的完整问题，"
    "补全其中省略或指代的疾病、药物或检查名称。只输出改写后的问题，不要回答。"
)


class Condenser(Protocol):
    name: str

    def condense(self, question: str, history: Sequence[Turn]) -> str: ...


class NoCondenser:
    """Retrieval searches the question as it is (``CHIMED_RAG_CONDENSE=off``)."""

    name = "off"

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        return question.strip()


class TopicFinder:
    """Finds topic words (document titles and their synonyms) in a text, longest match first."""

    def __init__(self, titles: Iterable[str], lexicon: Lexicon | None = None) -> None:
        lexicon = lexicon or Lexicon()
        titles = {t for t in titles if len(t) >= 2}
        words = set(titles)
        for group in lexicon.synonym_groups:
            # A group names a topic when one of its words is (part of) a title: 腹泻 for 《急性腹泻》.
            if any(len(w) >= 2 and any(w in t for t in titles) for w in group):
                words.update(w for w in group if len(w) >= 2)
        self.words = sorted(words, key=len, reverse=True)

    def find(self, text: str) -> list[str]:
        found: list[str] = []
        rest = text
        for word in self.words:
            if word in rest:
                found.append(word)
                rest = rest.replace(word, "\0")  # a shorter word inside a longer one is not a second topic
        return sorted(found, key=text.find)


@dataclass(frozen=True)
class RuleCondenser:
    topics: TopicFinder
    name: str = "rule"

    def _latest(self, history: Sequence[Turn]) -> tuple[Turn, list[str]] | None:
        for turn in reversed(history):
            found = self.topics.find(turn.question)
            if found:
                return turn, found
        return None

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        question = question.strip()
        latest = self._latest(history)
        if latest is None:
            return question
        turn, previous = latest
        own = self.topics.find(question)
        what_about = _WHAT_ABOUT.match(question)
        if own and what_about and what_about.group("topic") in own and len(question) <= len(own[0]) + 4:
            return turn.question.replace(previous[0], own[0], 1)
        cue = _LEADING_CUE.match(question) or _PRONOUN.search(question)
        if own and not cue:
            return question
        if any(t in question for t in previous):
            return question
        topic = previous[0]
        if _PRONOUN.search(question):
            return _PRONOUN.sub(topic, question, count=1)
        return topic + _LEADING_CUE.sub("", question)


class LLMCondenser:
    """Rewrites with the configured LLM; the rules catch an empty or runaway rewrite."""

    name = "llm"

    def __init__(self, generator: Generator, fallback: RuleCondenser, max_new_tokens: int = 64,
                 max_chars: int = 200) -> None:
        self.generator = generator
        self.fallback = fallback
        self.max_new_tokens = max_new_tokens
        self.max_chars = max_chars

    @staticmethod
    def prompt(question: str, history: Sequence[Turn]) -> str:
        lines = [f"用户：{sanitize(t.question)}\n助手：{sanitize(t.answer)}" for t in history]
        dialogue = "\n".join([*lines, f"用户：{sanitize(question)}"])
        return f"{HUMAN}{REWRITE_INSTRUCTION}\n对话：\n{dialogue}\n{BOT}"

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question.strip()
        request = GenerationRequest(self.prompt(question, history), question, (),
                                    {"max_new_tokens": self.max_new_tokens, "do_sample": False})
        text = self.generator.generate(request).strip()
        rewrite = text.splitlines()[0].strip() if text else ""
        rewrite = re.sub(r"^(?:改写后的问题|问题)[:：]\s*", "", rewrite).strip()
        if not rewrite or len(rewrite) > self.max_chars:
            return self.fallback.condense(question, history)
        return rewrite
