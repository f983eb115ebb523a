"""Retrieval quality on the shared dev sets, through ``chimed-rag eval retrieval --json``.

Expected scores are data (tests/expected/retrieval.yaml); a move of more than 0.01 on any metric fails, up or
down, so that an improvement is recorded in the YAML, not only guarded against. Indexes are built once per run
(and cached on disk across runs) by the dev_index fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.cli import main
from rag.evaluation import METRICS
from tests.conftest import DEV_SETS, shared_data

EXPECTED = Path(__file__).resolve().parent.parent / "expected" / "retrieval.yaml"
TOLERANCE = 0.01


def expected() -> dict[str, Any]:
    return yaml.safe_load(EXPECTED.read_text(encoding="utf-8"))


def test_expected_file_covers_every_set_and_mode() -> None:
    data = expected()
    assert set(data) == set(DEV_SETS)
    for modes in data.values():
        assert set(modes) == {"bm25", "dense", "hybrid"}
        for scores in modes.values():
            assert set(METRICS) <= set(scores)


@pytest.mark.slow
@pytest.mark.parametrize("name", DEV_SETS)
def test_dev_set_scores_do_not_regress(name: str, dev_index: Any, capsys: pytest.CaptureFixture[str]) -> None:
    index = dev_index(name)
    data = shared_data() / name / "dev"
    measured: dict[str, dict[str, float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        code = main(["eval", "retrieval", "--index", str(index.path), "--queries", str(data / "queries.jsonl"),
                     "--qrels", str(data / "qrels.tsv"), "--mode", mode, "--json"])
        out = capsys.readouterr().out.strip().splitlines()
        assert code == 0
        measured[mode] = json.loads(out[-1])
    with capsys.disabled():
        print(f"\n{name}: " + json.dumps({m: {k: v[k] for k in METRICS} for m, v in measured.items()}))
    want = expected()[name]
    for mode, scores in measured.items():
        for metric in METRICS:
            # Both ways: a drop fails, and so does an improvement the YAML does not record yet.
            assert abs(scores[metric] - want[mode][metric]) <= TOLERANCE, (name, mode, metric, scores[metric],
                                                                          want[mode][metric])
    # Fusion must not cost much: with the default 0.5/0.5 min-max weights hybrid beats both single retrievers on
    # cmeie-qa and toyhom-qa and trails dense by 0.007 on kuake-qtr (short titles, where BM25 is weak).
    best_single = max(measured["bm25"]["ndcg@10"], measured["dense"]["ndcg@10"])
    assert measured["hybrid"]["ndcg@10"] >= best_single - 2 * TOLERANCE
