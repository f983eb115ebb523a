"""Audit trace: one JSON line per answer, enough to replay why the system said what it said.

The question itself is left out unless ``audit_log_questions`` is on, since questions can hold health
data; a hash of it is always there so repeated questions can be matched without reading them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from rag.types import Hit

log = logging.getLogger("chimed_rag.audit")


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


class AuditLog:
    def __init__(self, path: Path | None = None, include_question: bool = False) -> None:
        self.path = path
        self.include_question = include_question
        self._lock = threading.Lock()

    def record(self, trace: dict[str, Any], question: str) -> dict[str, Any]:
        """The trace as logged: the question hashed, and in clear only when the setting allows it."""
        out = {**trace, "question_sha256": sha256(question)}
        if self.include_question:
            out["question"] = question
        line = json.dumps(out, ensure_ascii=False, sort_keys=True, default=str)
        log.info(line)
        if self.path is not None:
            with self._lock, Path(self.path).open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        return out
