"""Fitting abstention for an index generation, so that no publish silently loses it.

``refit`` is an ``indexer.build.Finalize``: it opens the staged (not yet live) generation, fits the
abstention model on the question sets and writes ``calibration.json`` into it before it is published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from indexer.embedding import Embedder
from indexer.index_dir import LoadedIndex, open_index
from rag.abstention import Calibration, calibrate
from rag.evaluation import read_queries
from rag.pipeline import RAGPipeline, build_generator
from rag.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)
DATA = PROJECT_ROOT / "tests" / "data"
T = TypeVar("T")


def read_jsonl(path: Path, read: Callable[[Any], T], expected: str) -> list[T]:
    """``read`` applied to each JSON line; any malformed line is reported by file and line number."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(read(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: expected {expected}") from exc
    return rows


def read_questions(path: Path) -> list[str]:
    """The questions of a JSONL file; each line has "question" or "text" (the one reader `eval retrieval` uses)."""
    return list(read_queries(path, require_id=False).values())


@dataclass(frozen=True)
class QuestionSets:
    """What abstention is fitted on: answerable questions (plus two per corpus title) vs out-of-corpus ones."""

    in_corpus: tuple[Path, ...] = field(default_factory=lambda: tuple(sorted((DATA / "coverage").glob("*.jsonl"))))
    out_of_corpus: Path = DATA / "out_of_corpus.jsonl"
    titles: bool = True
    target: float = 0.03  # the issue-13 goal: at most 3 % false abstention on everyday in-corpus questions


def questions(index: LoadedIndex, sets: QuestionSets) -> tuple[list[str], list[str], list[str]]:
    """(answerable, the group of each, unanswerable): what abstention is fitted on for this index."""
    answerable = [q for path in sets.in_corpus for q in read_questions(path)]
    groups = ["questions"] * len(answerable)
    if sets.titles:
        # The corpus' own topics, asked the way people ask: "<title>是什么？" and "<title>怎么办？".
        titles = sorted({p.title for p in index.passages if p.title})
        answerable += [f"{t}{suffix}" for t in titles for suffix in ("是什么？", "怎么办？")]
        groups += ["titles"] * (len(answerable) - len(groups))
    unanswerable = read_questions(sets.out_of_corpus)
    if not answerable or not unanswerable:
        raise ValueError("calibration needs both in-corpus and out-of-corpus questions")
    return answerable, groups, unanswerable


def fit(index: LoadedIndex, embedder: Embedder, settings: Settings, sets: QuestionSets,
        show_progress: bool = False) -> Calibration:
    # Features need only retrieval: the extractive generator keeps this cheap whatever is configured.
    settings = settings.model_copy(update={"generator": "extractive", "abstention_coef": None, "abstention": False})
    pipeline = RAGPipeline(index, embedder, build_generator(settings, index), settings)
    answerable, groups, unanswerable = questions(index, sets)
    return calibrate(pipeline.abstention_features, answerable, unanswerable, index.index_id, sets.target,
                     groups=groups, show_progress=show_progress)


def refit(embedder: Embedder, settings: Settings, sets: QuestionSets | None = None, show_progress: bool = False
          ) -> Callable[[Path, dict[str, Any]], dict[str, Any]]:
    """A finalize step for indexer.build: fit on the staged generation and store the result in it."""
    sets = sets or QuestionSets()

    def finalize(staged: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        result = fit(open_index(staged, verify="none"), embedder, settings, sets, show_progress)
        result.save(staged)
        log.info("calibrated generation %s: threshold %.4f", manifest["generation"], result.threshold)
        return {**manifest, "calibration": summary(result)}

    return finalize


def summary(result: Calibration) -> dict[str, Any]:
    keep = ("false_abstention", "correct_abstention", "cv_false_abstention", "cv_correct_abstention")
    return {"threshold": result.threshold, "target": result.target_false_abstention,
            **{k: result.rates[k] for k in keep if k in result.rates}}
