"""Audit trace: one JSON line per answer, enough to replay why the system said what it said.

The question itself is left out unless ``audit_log_questions`` is on, since questions can hold health
data; a keyed digest of it (HMAC-SHA256) is always there so repeated questions can be matched without
reading them. The key is what stops a dictionary attack: a plain hash of "感冒怎么处理？" is found by hashing
likely questions, an HMAC only by whoever holds the key. Safety signals (self-harm, ...) are health data
too: only the level is logged unless ``audit_log_signals`` is on. The log file is created 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.types import Hit

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger("chimed_rag.audit")
PRIVATE = 0o600


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def candidates_json(hits: tuple[Hit, ...] | list[Hit]) -> list[dict[str, Any]]:
    """Every candidate with each retriever's raw score and its rank within that retriever's list."""
    ranks: dict[str, dict[str, int]] = {}
    for name in {n for h in hits for n in h.scores}:
        scored = sorted((h for h in hits if h.scores.get(name) is not None),
                        key=lambda h: -float(h.scores[name]))  # type: ignore[arg-type]
        ranks[name] = {h.passage.chunk_id: r for r, h in enumerate(scored, start=1)}
    return [{"chunk_id": h.passage.chunk_id, "doc_id": h.passage.doc_id, "fused_score": h.score, "rank": h.rank,
             "scores": dict(h.scores), "ranks": {n: ranks[n].get(h.passage.chunk_id) for n in ranks}}
            for h in hits]


def load_secret(path: Path) -> bytes:
    """The HMAC key stored at ``path``, made (random, 0600, in a 0700 folder) if there is none yet."""
    path = Path(path).expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # O_EXCL: of several workers starting at once, one writes and the others read
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            log.warning("generated the audit digest key %s (keep it to match digests across restarts)", path)
        except FileExistsError:
            pass
    _make_private(path)
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise ValueError(f"{path}: the audit digest key is empty")
    return key.encode("ascii")


def _make_private(path: Path) -> None:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s was readable by others; made it 0600", path)
        os.chmod(path, PRIVATE)


class AuditLog:
    def __init__(self, path: Path | None = None, include_question: bool = False, secret: bytes | None = None,
                 include_signals: bool = False) -> None:
        self.path = path
        self.include_question = include_question
        self.include_signals = include_signals
        self._secret = secret or secrets.token_bytes(32)  # no key given: digests match within this process only
        self._lock = threading.Lock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # e.g. the API's metrics
        if path is not None and Path(path).exists():
            _make_private(Path(path))

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        configured = settings.audit_secret
        if configured:
            secret: bytes | None = configured.get_secret_value().encode("utf-8")
        else:
            try:
                secret = load_secret(settings.audit_secret_file)
            except OSError as exc:  # e.g. a read-only home in a container: still serve, and say so
                log.warning("cannot keep the audit digest key at %s (%s): digests will not match across "
                            "restarts; set CHIMED_RAG_AUDIT_SECRET", settings.audit_secret_file, exc)
                secret = None
        return cls(settings.audit_log, settings.audit_log_questions, secret, settings.audit_log_signals)

    def digest(self, question: str) -> str:
        return hmac.new(self._secret, question.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def record(self, trace: dict[str, Any], question: str) -> dict[str, Any]:
        """The trace as logged: the question as a keyed digest, in clear only when the setting allows it."""
        out = {**trace, "question_hmac": self.digest(question)}
        if self.include_question:
            out["question"] = question
        if not self.include_signals and isinstance(out.get("safety"), dict):
            out["safety"] = {"level": out["safety"].get("level")}
        for listener in self.listeners:
            listener(out)
        line = json.dumps(out, ensure_ascii=False, sort_keys=True, default=str)
        log.info(line)
        if self.path is not None:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
                with os.fdopen(fd, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        return out
