"""The benchmark suite's smoke mode runs end to end and writes its results and table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run
from bench.common import RESULTS
from tests.conftest import shared_data


@pytest.mark.slow
def test_smoke_run_writes_results(tmp_path: Path) -> None:
    shared_data()
    readme = tmp_path / "README.md"
    run.main(["--smoke", "--name", "test-smoke", "--no-readme", "--http-seconds", "2"])
    result = json.loads((RESULTS / "test-smoke.json").read_text(encoding="utf-8"))
    (RESULTS / "test-smoke.json").unlink()
    retrieval = result["retrieval"]["cmeie-qa"]
    for system in ("ours-hybrid", "ours-int8-hybrid", "langchain-hybrid"):
        assert 0.0 < retrieval["quality"][system]["ndcg@10"] <= 1.0
    assert retrieval["build_ours_int8"]["passages_per_s"] > 0 and retrieval["build_langchain"]["passages_per_s"] > 0
    assert retrieval["latency"]["ours-hybrid"]["n"] == 20
    assert result["http"]["search"]["errors"] == 0 and result["http"]["search"]["n"] > 0
    assert result["http"]["ask"]["errors"] == 0
    assert 0.5 < result["scale"]["hnsw"]["recall@10"] <= 1.0
    assert result["scale"]["ivfpq"]["code_bytes"] <= 64  # the bound; centroids dominate at smoke size
    assert "skipped" in result["gpu"] or result["gpu"]["tokens_per_s"] > 0

    from bench.report import write_readme

    write_readme(result, readme, "test-smoke.json")
    table = readme.read_text(encoding="utf-8")
    assert "ours-int8-hybrid" in table and "langchain-hybrid" in table and "requests/s" in table
