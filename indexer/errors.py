"""Errors the indexer raises with a message meant for the person who ran it."""

from __future__ import annotations

from collections.abc import Sequence


class IndexerError(Exception):
    """Base class: anything the CLI reports as a clean message and a non-zero exit."""


class CorpusError(IndexerError):
    """The input corpus is malformed (the message names the file and line)."""


class CorpusErrors(CorpusError):
    """Several problems found in one pass over a corpus, so a user fixes them all before the next run."""

    CAP = 20  # listed in the message; the rest are counted

    def __init__(self, problems: Sequence[CorpusError | str]) -> None:
        self.problems = tuple(str(p) for p in problems)
        shown = [f"  {p}" for p in self.problems[: self.CAP]]
        more = len(self.problems) - self.CAP
        super().__init__("\n".join([f"{len(self.problems)} problems in the corpus (nothing was written):", *shown,
                                     *([f"  … and {more} more"] if more > 0 else [])]))

    def __reduce__(self) -> tuple[type, tuple[tuple[str, ...]]]:
        return type(self), (self.problems,)  # raised in loader worker processes: must survive pickling


def corpus_error(problems: Sequence[CorpusError]) -> CorpusError:
    """One problem as itself (its type says what went wrong); several as one ``CorpusErrors``."""
    flat = [q for p in problems for q in (p.problems if isinstance(p, CorpusErrors) else (p,))]
    return flat[0] if len(flat) == 1 and isinstance(flat[0], CorpusError) else CorpusErrors(flat)


class UnsupportedFormatError(CorpusError):
    """A file of a type no loader reads, or whose content is not what its extension says."""


class EncryptedDocumentError(CorpusError):
    """A password-protected document."""


class CorruptDocumentError(CorpusError):
    """A file of a known type that cannot be parsed (truncated, damaged, empty)."""


class NoTextError(CorpusError):
    """A document with nothing to index: image-only pages, no main content."""


class LimitError(CorpusError):
    """A document over a configured size or page limit."""


class IndexFormatError(IndexerError):
    """An index directory is missing, incomplete, or of an unknown format version."""


class ModelMismatchError(IndexerError):
    """The index was built with a different embedding model or backend than configured."""


class IntegrityError(IndexFormatError):
    """A file of an index generation differs from what its manifest recorded (the message names it)."""
