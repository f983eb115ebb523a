"""What every structured loader shares: options, the text assembler with its segments, and text cleanup."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from indexer.types import Document, Segment


@dataclass(frozen=True)
class LoadOptions:
    """What a loader is told: limits it enforces while it parses (the upload route sets them from the settings)."""

    max_pages: int | None = None
    skip_empty: bool = False  # JSONL: leave out records with empty text (with a warning) instead of failing


class FormatLoader(Protocol):
    """One file format: which suffixes and leading bytes are its own, and how to read a file of it."""

    name: str
    suffixes: tuple[str, ...]

    def sniff(self, head: bytes) -> bool:
        """Whether the first bytes of a file look like this format (a renamed file is caught here)."""
        ...

    def load(self, file: Path, root: Path, options: LoadOptions) -> list[tuple[Document, str]]:
        """Every document of ``file`` with where it came from ('file:line'); raises CorpusError."""
        ...


@dataclass
class Assembler:
    """Concatenates blocks (one per line of the document text) and records a Segment for each."""

    parts: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    length: int = 0
    tables: int = 0

    def add(self, text: str, **where: Any) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self.parts.append("\n")
            self.length += 1
        self.parts.append(text)
        self.segments.append(Segment(self.length, self.length + len(text), **where))
        self.length += len(text)

    def new_table(self) -> int:
        self.tables += 1
        return self.tables

    @property
    def text(self) -> str:
        return "".join(self.parts)


def make_document(file: Path, root: Path, title: str, body: Assembler, metadata: dict[str, Any]) -> Document:
    """A document of a structured format: id and source are the path under the corpus root, suffix kept."""
    relative = file.relative_to(root).as_posix() if file.is_relative_to(root) else file.name
    return Document(id=relative, title=title.strip() or file.stem, text=body.text, source=relative,
                    metadata=metadata, layout=tuple(body.segments))


# Radicals that some PDF fonts emit for common characters and that NFKC leaves alone (NFKC fixes the Kangxi
# block, U+2F00-2FDF); plus private-use code points one journal typesetter uses for '.' and "'".
_FOLD = str.maketrans({"⻩": "黄", "⻁": "虎", "⻘": "青", "⻝": "食", "⻅": "见", "⻓": "长", "⻔": "门",
                       "⻢": "马", "⻋": "车", "⻛": "风", "⻉": "贝", "⻚": "页", "⻣": "骨", "⻜": "飞",
                       "\U001001b0": ".", "\U001001b3": "'", "\u200b": "", "\ufeff": "", "\u00a0": " "})
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}，。、；：（）《》“”]) +(?=[{_CJK}，。、；：（）《》“”])")
# A font that maps the space between CJK and Latin/digits to '.': "已高达.11.9%", "15～60.min", "表.1".
_FAKE_SPACE = re.compile(rf"(?<=[{_CJK}])\.(?=[0-9A-Za-z{_CJK}])|(?<=[0-9A-Za-z])\.(?=[{_CJK}])"
                         r"|(?<=[0-9])\.(?=[A-Za-z])")


# Only these are NFKC-folded: full-width letters and digits, Kangxi radicals, compatibility ideographs and
# the ideographic space. Full-width punctuation (，：（）) is how Chinese is written and stays as it is.
_COMPAT = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff05\uff0e\uff0b\uff1d\uff1c\uff1e"
                     "\u2f00-\u2fdf\uf900-\ufaff\u3000]")


def clean_text(text: str, fake_spaces: bool = False) -> str:
    """Normalised text: full-width letters/digits and radicals folded, spaced-out CJK closed up.

    ``fake_spaces``: the font maps spaces next to CJK to '.', which is then read back as spaces.
    """
    text = _COMPAT.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text).translate(_FOLD)
    if fake_spaces:
        text = _FAKE_SPACE.sub(" ", text)
    text = re.sub(r"[ \t\u2000-\u200a\u3000]+", " ", text)
    return _CJK_GAP.sub("", text)


def has_fake_spaces(text: str) -> bool:
    """Whether '.' stands in for the space between CJK and digits throughout (one font subset does this)."""
    return len(re.findall(rf"[{_CJK}]\.[0-9]", text)) >= 10


_END = "。！？!?；;：:"
_STARTS_ITEM = re.compile(r"^(?:[（(]?[一二三四五六七八九十]+[、.）)]|[（(]?\d{1,2}[、.）)]|[•·●▪■◆\-–]\s|"
                          r"表\s?\d|图\s?\d|附件\s?\d|第[一二三四五六七八九十\d]+[章节条])")


def join_lines(lines: list[str]) -> list[str]:
    """Paragraphs from the visual lines of a page: a line break inside a sentence is not a paragraph break.

    A line ends its paragraph when it ends a sentence, is clearly shorter than the page's full lines, or
    the next line starts an item, a numbered heading or a table/figure caption.
    """
    if not lines:
        return []
    full = sorted(map(_width, lines))[int(len(lines) * 0.8)]
    paragraphs: list[str] = []
    current = ""
    for n, line in enumerate(lines):
        current = _glue(current, line) if current else line
        following = lines[n + 1] if n + 1 < len(lines) else ""
        if (not following or line.endswith(tuple(_END)) or _width(line) < 0.7 * full
                or _STARTS_ITEM.match(following)):
            paragraphs.append(current)
            current = ""
    return paragraphs


def _width(line: str) -> int:
    """Printed width in half-width units: a CJK character is as wide as two Latin ones."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def _glue(left: str, right: str) -> str:
    if left.endswith("-") and left[-2:-1].isalpha() and right[:1].islower():
        return left[:-1] + right  # an English word hyphenated at the line end
    if left[-1:].isascii() and right[:1].isascii() and left[-1:].isalnum() and right[:1].isalnum():
        return f"{left} {right}"
    return left + right
