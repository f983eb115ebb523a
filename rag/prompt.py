"""The ChiMed-GPT prompt: instruction, numbered references, conversation, packed to the context window."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.intent import BY_NAME
from rag.protocols import Guidance
from rag.types import Hit, Turn

INSTRUCTION = (
    "你是一名严谨的医学科普助手。请只根据下面编号的参考资料回答用户的问题，"
    "在每句话末尾用[n]标注所依据的资料编号；参考资料没有涉及的内容，请直接说明资料中没有相关信息，不要编造。"
)
HUMAN = "[human]:"
BOT = "[bot]:"
# Role tags and citation markers inside user or document text are defused so they cannot open a
# new turn or forge a citation: half- or full-width brackets and colons, any case and spacing.
_ROLE_TAG = re.compile(r"[\[［【]\s*(human|bot)\s*[\]］】]\s*[:：]?", re.IGNORECASE)
_MARKER = re.compile(r"[\[［]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]］]")


class PromptTooLongError(ValueError):
    """The question (with what must accompany it) does not fit in the model's context."""


def sanitize(text: str) -> str:
    text = _ROLE_TAG.sub(lambda m: f"({m.group(1).lower()})", text)
    return _MARKER.sub(lambda m: f"({m.group(1)})", text)


def format_reference(number: int, hit: Hit) -> str:
    title = f"《{sanitize(hit.passage.title)}》" if hit.passage.title else ""
    text = " ".join(sanitize(hit.passage.text).split())
    return f"[{number}] {title}{text}"


def guidance_text(guidance: Guidance | None) -> str:
    """One instruction line that steers an LLM as the extractive composer is steered: the emergency first, else
    what the question asks for."""
    if guidance is None:
        return ""
    if guidance.emergency:
        return ("用户描述的情况可能是急症：请先根据参考资料说明如何识别这种急症、在等待急救（120）时现场应该怎么做、"
                "不要做什么，不要讨论无关内容。")
    labels = [BY_NAME[name].label for name in guidance.intents if name in BY_NAME]
    if labels:
        return (f"用户想了解的是：{'、'.join(labels)}。请围绕这些方面回答；"
                "参考资料只覆盖部分问题时，请说明哪些方面资料中没有涉及。")
    return ""


def render(question: str, hits: Sequence[Hit], history: Sequence[Turn] = (), guidance: Guidance | None = None) -> str:
    refs = "\n".join(format_reference(n, hit) for n, hit in enumerate(hits, start=1))
    steer = guidance_text(guidance)
    parts = [INSTRUCTION + steer, "参考资料：\n" + (refs or "（无）"), ""]
    for turn in history:
        parts.append(f"{HUMAN}{sanitize(turn.question)}\n{BOT}{sanitize(turn.answer)}")
    parts.append(f"{HUMAN}{sanitize(question)}\n{BOT}")
    return "\n".join(parts)


@dataclass(frozen=True)
class PackedPrompt:
    text: str
    hits: tuple[Hit, ...]
    history: tuple[Turn, ...]
    tokens: int
    dropped_passages: int
    dropped_turns: int


class PromptBuilder:
    """Fits the prompt into ``context_window - max_new_tokens`` tokens of the generator's tokenizer.

    The lowest-ranked passages go first, then the oldest conversation turns; if the question alone
    does not fit, :class:`PromptTooLongError` is raised.
    """

    def __init__(self, count_tokens: Callable[[str], int], context_window: int, max_new_tokens: int) -> None:
        self.count_tokens = count_tokens
        self.budget = context_window - max_new_tokens

    def build(self, question: str, hits: Sequence[Hit], history: Sequence[Turn] = (),
              guidance: Guidance | None = None) -> PackedPrompt:
        history = list(history)
        for drop_turns in range(len(history) + 1):
            turns = history[drop_turns:]
            n = self._max_passages(question, hits, turns, guidance)
            if n is not None:
                text = render(question, hits[:n], turns, guidance)
                return PackedPrompt(text, tuple(hits[:n]), tuple(turns), self.count_tokens(text),
                                    len(hits) - n, drop_turns)
        raise PromptTooLongError(
            f"the question does not fit in the model's context ({self.budget} tokens after reserving the answer)"
        )

    def _max_passages(self, question: str, hits: Sequence[Hit], turns: Sequence[Turn],
                      guidance: Guidance | None) -> int | None:
        """Largest n such that the prompt with the top-n passages fits (binary search; fit is monotone)."""
        if self.count_tokens(render(question, [], turns, guidance)) > self.budget:
            return None
        low, high = 0, len(hits)
        while low < high:
            mid = (low + high + 1) // 2
            if self.count_tokens(render(question, hits[:mid], turns, guidance)) <= self.budget:
                low = mid
            else:
                high = mid - 1
        return low
