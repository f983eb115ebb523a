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
from rag.abstention import looks_medical
from rag.normalise import TermNormaliser
from rag.prompt import BOT, HUMAN, sanitize
from rag.protocols import GenerationRequest, Generator
from rag.types import Turn

# A follow-up that leans on the conversation: opens with a connective or refers back with a pronoun.
_LEADING_CUE = re.compile(r"^(?:那么|那|还有|另外|然后|所以|要是|如果)[，,、\s]*")
# Patients also say 毛病 for a disease and refer back with 那 as well as 这 ("那个药能停吗").
_PRONOUN = re.compile(r"这个病|这种病|这病|该病|这种情况|这个情况|这情况|这种药|这个药|这药|它|"
                      r"这个毛病|这种毛病|这毛病|那个病|那种病|那个药|那种药|这个症状|这种症状|这症状")
# "那高血压呢？" asks the previous question again about another topic; "那运动方面呢？" about an aspect.
_WHAT_ABOUT = re.compile(r"^(?:那么|那|还有)?\s*(?P<topic>.+?)\s*(?:呢|怎么样|如何)[？?。!！\s]*$")
# What a question can ask *about* a topic: such an X in "那X呢" keeps the topic, even when X is also a
# corpus topic of its own (运动 names 《身体活动》, but "那运动方面呢" after diabetes asks about diabetes).
_ASPECT = re.compile(r"方面|饮食|吃|喝|运动|锻炼|药|治疗|检查|预防|护理|注意|症状|表现|原因|手术|复查|遗传|传染|"
                     r"睡|工作|上班|上学|洗澡|怀孕|喂奶|疫苗|费用|多久|危害|后果")
# Who the question is about. A follow-up without one keeps the conversation's patient ("孩子烧到39度" →
# "退烧药可以用布洛芬吗" is still about the child); one with its own patient changes it.
_PATIENTS = (
    ("孩子", re.compile(r"孩子|宝宝|小孩|儿子|女儿|婴儿|幼儿|新生儿|小朋友|娃|儿童")),
    ("孕妇", re.compile(r"怀孕|孕妇|孕期|孕早期|孕晚期|备孕|哺乳|喂奶期间")),
    ("老人", re.compile(r"老人|老年|爷爷|奶奶|外公|外婆|姥姥|姥爷|老爷子|老太太")),
)
_MIN_CONTEXT = 6  # characters: an earlier question this long is context even without a known topic
_OWN_PATIENT = re.compile("|".join(p.pattern for _, p in _PATIENTS)
                          + r"|大人|成人|成年人|我自己|我老公|我老婆|我爸|我妈|男的|女的")
# An age on its own ("那三个月的呢" after "三岁孩子发烧…") asks the same question about a patient of that age;
# it names no topic, so the old age is swapped and the patient noun (孩子) is kept.
_AGE = re.compile(r"[\d一二两三四五六七八九十几半]+(?:周岁|岁半|岁|个多月|个半月|个月)大?的?")

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
    """Finds topic words in a text: document titles, their lexicon synonyms, the lexicon's medical terms,
    and the canonical terms that patient wording normalises to (说不出话+没劲 → 脑卒中)."""

    def __init__(self, titles: Iterable[str], lexicon: Lexicon | None = None,
                 normaliser: TermNormaliser | None = None) -> None:
        lexicon = lexicon or Lexicon()
        titles = {t for t in titles if len(t) >= 2}
        words = set(titles) | {w for w in lexicon.user_words if len(w) >= 2}
        for group in lexicon.synonym_groups:
            # A group names a topic when one of its words is (part of) a title: 腹泻 for 《急性腹泻》.
            if any(len(w) >= 2 and any(w in t for t in titles) for w in group):
                words.update(w for w in group if len(w) >= 2)
        self.words = sorted(words, key=len, reverse=True)
        self.normaliser = normaliser or TermNormaliser()

    def literal(self, text: str) -> list[str]:
        """Topic words written in the text, longest match first, in text order."""
        found: list[str] = []
        rest = text
        for word in self.words:
            if word in rest:
                found.append(word)
                rest = rest.replace(word, "\0")  # a shorter word inside a longer one is not a second topic
        return sorted(found, key=text.find)

    def find(self, text: str) -> list[str]:
        """Written topics first, then those the patient's wording names (拉肚子 → 腹泻)."""
        written = self.literal(text)
        named = [t for t in self.normaliser.topics(text) if t not in written and not any(t in w for w in written)]
        return [*written, *named]


def _patient(text: str) -> str | None:
    return next((name for name, pattern in _PATIENTS if pattern.search(text)), None)


@dataclass(frozen=True)
class RuleCondenser:
    """Each earlier question is first made standalone itself, so a topic carries over any number of turns
    ("高血压…" → "那糖尿病呢" → "运动方面呢" asks about diabetes) and so does the patient."""

    topics: TopicFinder
    name: str = "rule"
    carried_topics: int = 2  # a question often names a symptom and the disease: 想吐 + 偏头痛

    def condense(self, question: str, history: Sequence[Turn]) -> str:
        standalone: list[str] = []
        for turn in history:
            standalone.append(self._one(turn.question.strip(), standalone))
        return self._one(question.strip(), standalone)

    def _one(self, question: str, previous: Sequence[str]) -> str:
        # The latest earlier question with substance ("谢谢" is skipped; "嘴里老长溃疡" is not).
        context = next((q for q in reversed(previous)
                        if self.topics.find(q) or looks_medical(q) or len(q) >= _MIN_CONTEXT), None)
        if context is None:
            return question
        query = self._topical(question, context)
        patient = next((_patient(q) for q in reversed(previous) if _OWN_PATIENT.search(q)), None)
        if patient and patient not in query and not _OWN_PATIENT.search(question):
            return patient + query
        return query

    def _topical(self, question: str, context: str) -> str:
        previous = self.topics.find(context)
        own = self.topics.find(question)
        carried = " ".join(previous[: self.carried_topics]) if previous else context
        what_about = _WHAT_ABOUT.match(question)
        if what_about and len(what_about.group("topic")) <= 12:
            subject = _LEADING_CUE.sub("", what_about.group("topic"))
            if _OWN_PATIENT.search(subject) and not own:  # "那三岁孩子呢": the same question, another patient
                return subject + _OWN_PATIENT.sub("", context)
            if _AGE.fullmatch(subject) and not own:  # "那三个月的呢": the same patient at another age
                return subject + _AGE.sub("", context)
            if _ASPECT.search(subject) or (not own and len(subject) < 2):  # "那运动方面呢": an aspect
                return f"{carried}{subject}" if previous else f"{context} {subject}"
            # "那糖尿病呢": the previous question about the new topic (named by the lexicon, or not)
            return self._retopic(context, previous, own[0] if own else subject)
        cue = _LEADING_CUE.match(question) or _PRONOUN.search(question)
        if own and not cue:
            return question
        if any(t in question for t in previous):
            return question
        if _PRONOUN.search(question):
            return _PRONOUN.sub(carried, question, count=1)
        rest = _LEADING_CUE.sub("", question)
        return f"{carried}{rest}" if previous else f"{context} {rest}"

    def _retopic(self, context: str, previous: list[str], topic: str) -> str:
        """The previous question with its topic swapped for ``topic``."""
        if previous and previous[0] in context:
            return context.replace(previous[0], topic, 1)
        rest = context  # the topic was named in patient words (or not at all): drop those words instead
        for span in self.topics.normaliser.cue_spans(context):
            rest = rest.replace(span, "")
        return f"{topic} {rest.strip('，,。 ')}"


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
