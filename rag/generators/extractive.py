"""LLM-free answers: the sentences of the top passages that best match the question, each cited.

This is the embedded default where no GPU model is configured. It never writes a word that is not
in a retrieved passage, so every sentence is supported by the passage it cites by construction.
Sentences are scored by word overlap with the question, plus a bonus when the section they sit in
(治疗, 症状, 何时就医 …) is the kind the question asks about, minus a small penalty per passage rank.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from indexer.chunking import split_sentences
from rag.protocols import GenerationRequest

_HEADING = re.compile(r"^【([^】]*)】\s*")

# What a question asks for (cue words) → the document sections that answer it.
INTENTS: tuple[tuple[str, frozenset[str]], ...] = (
    (r"怎么办|怎么治|如何治|治疗|吃什么药|吃啥药|用什么药|用啥药|什么药|处理|缓解|怎么弄|咋办|怎么护理",
     frozenset({"治疗", "自我观察与处理", "现场处理", "用药提示", "具体做法", "适用情况"})),
    (r"症状|表现|什么感觉|征兆|前兆|有什么反应", frozenset({"症状", "表现", "识别"})),
    (r"原因|为什么|怎么引起|病因|怎么回事|咋回事|怎么会", frozenset({"病因", "原因", "常见原因"})),
    (r"医院|就医|看医生|就诊|要紧|严重吗|危险|急诊", frozenset({"何时就医"})),
    (r"预防|注意什么|注意事项|饮食|日常|平时|能不能吃|忌口",
     frozenset({"预防与日常管理", "注意事项", "要点", "具体做法"})),
    (r"检查|诊断|化验|指标|正常值|偏高|偏低|结果|报告", frozenset({"诊断与检查", "检查项目与意义", "结果解读"})),
    (r"副作用|不良反应", frozenset({"常见不良反应"})),
    (r"禁忌|不能用|能不能用|孕妇|哺乳", frozenset({"禁忌与慎用"})),
    (r"一起吃|同时吃|相互作用|合用", frozenset({"相互作用"})),
)


@dataclass(frozen=True)
class ExtractiveConfig:
    max_sentences: int = 4
    max_chars: int = 320
    passages: int = 5  # how many top passages sentences are drawn from
    min_sentence_chars: int = 6
    rank_decay: float = 0.08  # score penalty per passage rank, so better passages are preferred
    section_bonus: float = 0.35  # for a sentence in a section of the kind the question asks about


@dataclass(frozen=True)
class _Candidate:
    score: float
    passage: int
    position: int
    text: str


def wanted_sections(question: str) -> frozenset[str]:
    wanted: set[str] = set()
    for cues, sections in INTENTS:
        if re.search(cues, question):
            wanted |= sections
    return frozenset(wanted)


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

    def _sentences(self, text: str, section: str) -> Iterator[tuple[int, str, str]]:
        """(position, sentence, section) with headings stripped and the section tracked."""
        for position, (start, end) in enumerate(split_sentences(text)):
            sentence = text[start:end]
            heading = _HEADING.match(sentence)
            if heading:
                section = heading.group(1)
                sentence = sentence[heading.end():]
            yield position, sentence.strip(), section

    def _candidates(self, request: GenerationRequest) -> list[_Candidate]:
        query = set(self.tokenize(request.question))
        wanted = wanted_sections(request.question)
        out: list[_Candidate] = []
        for n, hit in enumerate(request.passages[: self.config.passages], start=1):
            section = str(hit.passage.metadata.get("section", ""))
            for position, sentence, sec in self._sentences(hit.passage.text, section):
                # Questions ("感冒怎么处理？") are headings in disguise and "…如下：" lines introduce a
                # list; neither answers anything on its own.
                if len(sentence) < self.config.min_sentence_chars or sentence.endswith(("？", "?", "：", ":")):
                    continue
                tokens = set(self.tokenize(sentence))
                overlap = len(query & tokens) / (len(query) ** 0.5 * max(len(tokens), 1) ** 0.5) if query else 0.0
                bonus = self.config.section_bonus if sec in wanted else 0.0
                out.append(_Candidate(overlap + bonus - self.config.rank_decay * (n - 1), n, position, sentence))
        return out

    def compose(self, request: GenerationRequest) -> list[str]:
        """The chosen sentences, each ending with its ``[n]`` marker, in passage then text order."""
        chosen: list[_Candidate] = []
        used_chars = 0
        for cand in sorted(self._candidates(request), key=lambda c: (-c.score, c.passage, c.position)):
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
        body = sentence.rstrip("。！？；;!?：:")
        end = sentence[len(body):][:1]
        return f"{body}[{number}]{end if end in '。！' else '。'}"

    def generate(self, request: GenerationRequest) -> str:
        return "".join(self.compose(request))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from self.compose(request)
