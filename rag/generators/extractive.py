"""LLM-free answers: the sentences of the top passages that best match the question, each cited.

This is the embedded default where no GPU model is configured. It never writes a word that is not
in a retrieved passage, so every sentence is supported by the passage it cites by construction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from indexer.chunking import split_sentences
from rag.protocols import GenerationRequest

_HEADING = re.compile(r"^【[^】]*】\s*")


@dataclass(frozen=True)
class ExtractiveConfig:
    max_sentences: int = 4
    max_chars: int = 320
    passages: int = 3  # how many top passages sentences are drawn from
    min_sentence_chars: int = 6
    rank_decay: float = 0.15  # score penalty per passage rank, so the best passage is preferred


@dataclass(frozen=True)
class _Candidate:
    score: float
    passage: int
    position: int
    text: str


class ExtractiveGenerator:
    def __init__(self, tokenize: Callable[[str], list[str]], config: ExtractiveConfig | None = None) -> None:
        self.tokenize = tokenize
        self.config = config or ExtractiveConfig()

    @property
    def name(self) -> str:
        return "extractive"

    @property
    def context_window(self) -> int:
        return 1_000_000  # not a language model: no context limit applies

    @property
    def max_new_tokens(self) -> int:
        return 0

    def count_tokens(self, text: str) -> int:
        return len(text)

    def describe(self) -> dict[str, Any]:
        return {"backend": "extractive", **asdict(self.config)}

    def _candidates(self, request: GenerationRequest) -> list[_Candidate]:
        query = set(self.tokenize(request.question))
        out: list[_Candidate] = []
        for n, hit in enumerate(request.passages[: self.config.passages], start=1):
            text = hit.passage.text
            for position, (start, end) in enumerate(split_sentences(text)):
                sentence = _HEADING.sub("", text[start:end]).strip()
                if len(sentence) < self.config.min_sentence_chars:
                    continue
                tokens = set(self.tokenize(sentence))
                overlap = len(query & tokens) / (len(query) ** 0.5 * max(len(tokens), 1) ** 0.5) if query else 0.0
                out.append(_Candidate(overlap - self.config.rank_decay * (n - 1), n, position, sentence))
        return out

    def compose(self, request: GenerationRequest) -> list[str]:
        """The chosen sentences, each ending with its ``[n]`` marker, in passage then text order."""
        candidates = self._candidates(request)
        chosen: list[_Candidate] = []
        used_chars = 0
        for cand in sorted(candidates, key=lambda c: (-c.score, c.passage, c.position)):
            if len(chosen) >= self.config.max_sentences:
                break
            if chosen and used_chars + len(cand.text) > self.config.max_chars:
                continue
            if any(cand.text in c.text or c.text in cand.text for c in chosen):
                continue
            chosen.append(cand)
            used_chars += len(cand.text)
        chosen.sort(key=lambda c: (c.passage, c.position))
        return [self._with_marker(c.text, c.passage) for c in chosen]

    @staticmethod
    def _with_marker(sentence: str, number: int) -> str:
        body = sentence.rstrip("。！？；;!?")
        end = sentence[len(body):] or "。"
        if end[0] in "；;":
            end = "。"
        return f"{body}[{number}]{end[0]}"

    def generate(self, request: GenerationRequest) -> str:
        return "".join(self.compose(request))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from self.compose(request)
