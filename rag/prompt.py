"""The ChiMed-GPT prompt: instruction, numbered references, conversation, packed to the context window."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def render(question: str, hits: Sequence[Hit], history: Sequence[Turn] = ()) -> str:
    refs = "\n".join(format_reference(n, hit) for n, hit in enumerate(hits, start=1))
    parts = [INSTRUCTION, "参考资料：\n" + (refs or "（无）"), ""]
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

    def build(self, question: str, hits: Sequence[Hit], history: Sequence[Turn] = ()) -> PackedPrompt:
        history = list(history)
        for drop_turns in range(len(history) + 1):
            turns = history[drop_turns:]
            n = self._max_passages(question, hits, turns)
            if n is not None:
                text = render(question, hits[:n], turns)
                return PackedPrompt(text, tuple(hits[:n]), tuple(turns), self.count_tokens(text),
                                    len(hits) - n, drop_turns)
        raise PromptTooLongError(
            f"the question does not fit in the model's context ({self.budget} tokens after reserving the answer)"
        )

    def _max_passages(self, question: str, hits: Sequence[Hit], turns: Sequence[Turn]) -> int | None:
        """Largest n such that the prompt with the top-n passages fits (binary search; fit is monotone)."""
        if self.count_tokens(render(question, [], turns)) > self.budget:
            return None
        low, high = 0, len(hits)
        while low < high:
            mid = (low + high + 1) // 2
            if self.count_tokens(render(question, hits[:mid], turns)) <= self.budget:
                low = mid
            else:
                high = mid - 1
        return low
