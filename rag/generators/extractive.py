"""LLM-free answers composed from the retrieved passages: a lead sentence, then the points, each cited.

This is the embedded default where no GPU model is configured. It never writes a word that is not in a
retrieved passage, so every sentence is supported by the passage it cites by construction. What it chooses:

* **Units, never fragments.** A passage line is a unit when it is a whole list item or a short paragraph
  (lines are list items in the shipped corpus: the loader strips the bullets); a long line is split into its
  sentences at 。！？ — never at "；", which joins the halves of one list item. A chunk may begin or end inside
  a line (the chunker also cuts at "；"): with the documents' text at hand (rebuilt from the index's chunks), a
  piece is used only when it is a whole line or a whole sentence of its document.
* **Relevance to what is asked.** The question is split into its parts (rag.intent); a unit scores by word
  overlap with the part, a bonus when its section (治疗, 何时就医 …) answers the part's intent, and a penalty
  per *document* rank plus a bonus for the best document, so the chunks of the best document count alike and
  it can answer from several of its sections; a small cost per character lets the budget hold more short
  points. With triage's emergency guidance the sections are the first-aid ones.
* **No repetition.** Units are picked by maximal marginal relevance (MMR) over analyzer tokens, so two
  passages that say the same thing give one point; a length budget in characters bounds the answer.
* **Honesty about gaps.** A part of the question that no unit answers is named in a note
  ("参考资料未涉及：能吃水果吗"), not papered over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass

from rag.emergency import GUIDE
from rag.intent import BY_NAME, EMERGENCY, QuestionPart, parts
from rag.protocols import GenerationRequest, Note
from rag.types import Passage

_HEADING = re.compile(r"^【([^】\n]{1,30})】$")
_SENTENCE = re.compile(r"[^。！？!?]+(?:[。！？!?]+[”’」』）)]*|$)")
_ENDS = "。！？!?；;，,：: "


@dataclass(frozen=True)
class ExtractiveConfig:
    max_chars: int = 300  # budget of the answer body in characters (markers not counted)
    max_points: int = 12
    passages: int = 8  # how many top passages units are drawn from
    min_unit_chars: int = 6
    max_unit_chars: int = 50  # a longer line is split into its sentences
    # Score penalty per document rank: a lower document's points come in only when they are clearly more on point.
    rank_decay: float = 0.3
    section_bonus: float = 0.35  # for a unit in a section of the kind the question asks about
    lead_document_bonus: float = 0.2  # for a unit of the best document: it usually answers the whole question
    length_cost: float = 0.05  # per 100 characters, so that a budget holds more short points than long ones
    mmr_lambda: float = 0.75  # relevance vs novelty when picking the next unit
    min_relevance: float = 0.1  # a part whose best unit scores below this is reported as not covered


@dataclass(frozen=True)
class Unit:
    passage: int  # 1-based marker of the passage it comes from
    position: int
    text: str
    section: str
    tokens: frozenset[str]
    document: int = 1  # 1-based rank of its document among the passages' documents


@dataclass(frozen=True)
class Composition:
    units: tuple[Unit, ...]
    uncovered: tuple[str, ...]  # question parts nothing answered


def document_texts(passages: Iterable[Passage]) -> dict[str, str]:
    """Each document's text rebuilt from its chunks' spans; the gaps between chunks are the whitespace the
    chunker trimmed (line breaks). Chunks whose text is not their span (table rows with a header) are skipped."""
    pieces: dict[str, dict[int, str]] = {}
    for p in passages:
        start, end = p.span
        if end - start == len(p.text):
            pieces.setdefault(p.doc_id, {})[start] = p.text
    out: dict[str, str] = {}
    for doc, chunks in pieces.items():
        buffer: list[str] = []
        for start in sorted(chunks):
            if start > len(buffer):
                buffer.extend("\n" * (start - len(buffer)))
            text = chunks[start]
            buffer[start:start + len(text)] = text
        out[doc] = "".join(buffer)
    return out


def whole_pieces(document: str) -> frozenset[str]:
    """Every whole line and every whole sentence of a document, end punctuation trimmed."""
    out: set[str] = set()
    for raw in document.splitlines():
        line = raw.strip()
        if line:
            out.add(line.rstrip(_ENDS))
            out.update(m.group(0).strip().rstrip(_ENDS) for m in _SENTENCE.finditer(line))
    return frozenset(out)


def units_of(text: str, section: str, passage: int, tokenize: Callable[[str], list[str]],
             config: ExtractiveConfig, whole: frozenset[str] | None = None, document: int = 1) -> list[Unit]:
    """The answerable units of a passage: whole lines (list items), long lines split at sentence ends.

    ``whole``: the document's whole lines and sentences; a line the chunk cut is then replaced by those of its
    sentences that are whole, and a piece that is neither is left out."""
    out: list[Unit] = []
    for line in (raw.strip() for raw in text.splitlines()):
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(1)
            continue
        cut = whole is not None and line.rstrip(_ENDS) not in whole
        long = len(line) > config.max_unit_chars
        pieces = [m.group(0).strip() for m in _SENTENCE.finditer(line)] if long or cut else [line]
        for piece in pieces:
            if whole is not None and piece.rstrip(_ENDS) not in whole:
                continue
            # "…如下：" introduces a list and a question is a heading in disguise: neither answers anything.
            if len(piece) < config.min_unit_chars or piece.endswith(("？", "?", "：", ":")):
                continue
            out.append(Unit(passage, len(out), piece, section, frozenset(tokenize(piece)), document))
    return out


def _overlap(query: frozenset[str], tokens: frozenset[str], weight: dict[str, float]) -> float:
    """Cosine of binary token sets, each token weighted by its rarity among the candidate units: "花粉" in a
    pollen question counts for more than "过敏", which every unit of an allergy passage shares."""
    if not query or not tokens:
        return 0.0
    shared = sum(weight.get(t, 1.0) for t in query & tokens)
    return shared / ((sum(weight.get(t, 1.0) for t in query) * len(tokens)) ** 0.5)


def rarity(units: list[Unit]) -> dict[str, float]:
    """Inverse document frequency of each token over the units, scaled so that a token in every unit weighs 1."""
    df: dict[str, int] = {}
    for unit in units:
        for token in unit.tokens:
            df[token] = df.get(token, 0) + 1
    n = max(1, len(units))
    return {t: 1.0 + math.log(n / d) for t, d in df.items()}


def _similarity(a: Unit, b: Unit) -> float:
    if a.text in b.text or b.text in a.text:
        return 1.0
    return len(a.tokens & b.tokens) / max(1, min(len(a.tokens), len(b.tokens)))


class ExtractiveGenerator:
    def __init__(self, tokenize: Callable[[str], list[str]], config: ExtractiveConfig | None = None,
                 documents: Mapping[str, str] | None = None) -> None:
        """``documents``: doc id → full text (see :func:`document_texts`), so that no unit is a fragment of a
        line the chunker cut; without it every passage line counts as whole."""
        self.tokenize = tokenize
        self.config = config or ExtractiveConfig()
        self._whole = {doc: whole_pieces(text) for doc, text in (documents or {}).items()}

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

    def describe(self) -> dict[str, object]:
        return {"backend": "extractive", **asdict(self.config)}

    def _units(self, request: GenerationRequest) -> list[Unit]:
        units: list[Unit] = []
        documents: dict[str, int] = {}
        # With a red flag, the body comes from the guide documents triage chose (rag.emergency marks their hits),
        # never from a passage that only shares the patient's words ("手脚" in an ADHD text for a stroke).
        guided = request.guidance.emergency and any(GUIDE in h.scores for h in request.passages)
        for n, hit in enumerate(request.passages[: self.config.passages], start=1):
            if guided and GUIDE not in hit.scores:
                continue
            section = str(hit.passage.metadata.get("section", ""))
            whole = self._whole.get(hit.passage.doc_id)
            document = documents.setdefault(hit.passage.doc_id, len(documents) + 1)
            units.extend(units_of(hit.passage.text, section, n, self.tokenize, self.config, whole, document))
        return units

    def _parts(self, request: GenerationRequest) -> tuple[QuestionPart, ...]:
        if request.guidance.emergency:
            return (QuestionPart(request.question, (EMERGENCY,)),)
        found = parts(request.question)
        if request.guidance.intents and not any(p.intents for p in found):
            intents = tuple(BY_NAME[name] for name in request.guidance.intents if name in BY_NAME)
            return (QuestionPart(request.question, intents),)
        return found

    def _relevance(self, unit: Unit, part: QuestionPart, query: frozenset[str], weight: dict[str, float]) -> float:
        c = self.config
        bonus = (c.section_bonus if unit.section in part.sections else 0.0) + (
            c.lead_document_bonus if unit.document == 1 else 0.0)
        return (_overlap(query, unit.tokens, weight) + bonus - c.rank_decay * (unit.document - 1)
                - c.length_cost * len(unit.text) / 100)

    def _scored(self, request: GenerationRequest, units: list[Unit]) -> list[tuple[QuestionPart, dict[Unit, float],
                                                                                  list[Unit]]]:
        """Per question part: each unit's relevance, and the units that share a word with the part itself."""
        weight = rarity(units)
        question_tokens = frozenset(self.tokenize(request.question))
        out = []
        for part in self._parts(request):
            own = frozenset(self.tokenize(part.text))
            relevance = {u: self._relevance(u, part, own | question_tokens, weight) for u in units}
            answering = [u for u in units if own & u.tokens]
            if request.guidance.emergency:
                # Triage put the red-flag guide first: its units answer the emergency even when the patient's
                # words ("胸口压着疼") share none with the text ("胸骨后压榨性疼痛").
                relevance = {u: max(r, self.config.min_relevance) if u.passage == 1 else r
                             for u, r in relevance.items()}
                answering = units
            out.append((part, relevance, answering))
        return out

    def compose(self, request: GenerationRequest) -> Composition:
        """Pick units part by part (each part's best first), then fill the budget by MMR over all parts."""
        units = self._units(request)
        scored = self._scored(request, units)
        chosen: list[Unit] = []
        uncovered: list[int] = []
        for i, (_, relevance, candidates) in enumerate(scored):  # every part gets its best unit, if any
            best = max(candidates, key=lambda u: relevance[u], default=None)
            if best is None or relevance[best] < self.config.min_relevance:
                uncovered.append(i)
            elif best not in chosen and self._fits(chosen, best):
                chosen.append(best)
        relevance = {u: max(r[u] for _, r, _ in scored) for u in units} if scored else {}
        if not chosen:
            # Nothing cleared the bar, but a unit that names what is asked beats an empty answer; the part it
            # answers is then not reported as a gap.
            fallback = max((u for *_, c in scored for u in c), key=lambda u: relevance[u], default=None)
            if fallback is not None:
                chosen.append(fallback)
                uncovered = [i for i in uncovered if fallback not in scored[i][2]]
        while len(chosen) < self.config.max_points:
            pick = self._next(relevance, chosen)
            if pick is None:
                break
            chosen.append(pick)
        return Composition(tuple(self._ordered(chosen, relevance)), tuple(scored[i][0].text for i in uncovered))

    def _fits(self, chosen: list[Unit], unit: Unit) -> bool:
        used = sum(len(u.text) for u in chosen)
        return not chosen or used + len(unit.text) <= self.config.max_chars

    def _next(self, relevance: dict[Unit, float], chosen: list[Unit]) -> Unit | None:
        lam = self.config.mmr_lambda
        best, best_score = None, float("-inf")
        for unit, rel in relevance.items():
            if unit in chosen or rel < self.config.min_relevance or not self._fits(chosen, unit):
                continue
            redundancy = max((_similarity(unit, c) for c in chosen), default=0.0)
            if redundancy >= 0.8:
                continue
            score = lam * rel - (1 - lam) * redundancy
            if score > best_score:
                best, best_score = unit, score
        return best

    @staticmethod
    def _ordered(chosen: list[Unit], relevance: dict[Unit, float]) -> list[Unit]:
        """The most relevant unit leads; the points follow in their passages' order, as the documents tell them."""
        if not chosen:
            return []
        lead = max(chosen, key=lambda u: relevance.get(u, 0.0))
        rest = sorted((u for u in chosen if u is not lead), key=lambda u: (u.passage, u.position))
        return [lead, *rest]

    @staticmethod
    def _with_marker(text: str, number: int) -> str:
        """Each sentence of the unit ends with the marker, so every sentence is cited on its own."""
        out = []
        for match in _SENTENCE.finditer(text):
            sentence = match.group(0).strip()
            body = sentence.rstrip("。！？；;!?：:，,")
            end = sentence[len(body):][:1]
            out.append(f"{body}[{number}]{end if end in '。！' else '。'}")
        return "".join(out)

    def _pieces(self, request: GenerationRequest) -> Iterator[str]:
        composition = self.compose(request)
        for i, unit in enumerate(composition.units):
            yield ("\n" if i else "") + self._with_marker(unit.text, unit.passage)
        if composition.uncovered:
            yield Note("参考资料未涉及：" + "；".join(composition.uncovered) + "。")

    def generate(self, request: GenerationRequest) -> str:
        return "".join(p for p in self._pieces(request) if not isinstance(p, Note))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from self._pieces(request)
