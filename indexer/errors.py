"""Errors the indexer raises with a message meant for the person who ran it."""


class IndexerError(Exception):
    """Base class: anything the CLI reports as a clean message and a non-zero exit."""


class CorpusError(IndexerError):
    """The input corpus is malformed (the message names the file and line)."""


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
