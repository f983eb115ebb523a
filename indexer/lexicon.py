"""Medical lexicon: a jieba user dictionary (terms kept whole) and synonym groups.

File formats (UTF-8, ``#`` starts a comment):
- user dictionary: one term per line, optionally followed by a frequency and a part of speech
  (jieba's own format);
- synonyms: one group per line, words separated by whitespace, the standard term first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import CorpusError


@dataclass(frozen=True)
class Lexicon:
    user_words: tuple[str, ...] = ()
    synonym_groups: tuple[tuple[str, ...], ...] = ()
    _index: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for group in self.synonym_groups:
            for word in group:
                self._index[word] = group

    def synonyms(self, word: str) -> tuple[str, ...]:
        """The other words of ``word``'s group (empty if it has none)."""
        return tuple(w for w in self._index.get(word, ()) if w != word)

    def canonical(self, word: str) -> str:
        group = self._index.get(word)
        return group[0] if group else word

    def all_terms(self) -> list[str]:
        """Every term jieba must keep whole: the dictionary and every synonym."""
        seen = dict.fromkeys([*self.user_words, *(w for g in self.synonym_groups for w in g)])
        return list(seen)

    def fingerprint(self) -> str:
        payload = "\n".join(self.user_words) + "\0" + "\n".join(" ".join(g) for g in self.synonym_groups)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            yield number, line


def read_user_dict(path: Path) -> list[str]:
    return [line.split()[0] for _, line in _lines(path)]


def read_synonyms(path: Path) -> list[tuple[str, ...]]:
    groups: list[tuple[str, ...]] = []
    for number, line in _lines(path):
        words = tuple(dict.fromkeys(line.split()))
        if len(words) < 2:
            raise CorpusError(f"{path}:{number}: a synonym group needs at least two words")
        groups.append(words)
    return groups


def load_lexicon(user_dict: str | Path | None = None, synonyms: str | Path | None = None) -> Lexicon:
    words = read_user_dict(Path(user_dict)) if user_dict else []
    groups = read_synonyms(Path(synonyms)) if synonyms else []
    return Lexicon(user_words=tuple(dict.fromkeys(words)), synonym_groups=tuple(groups))
