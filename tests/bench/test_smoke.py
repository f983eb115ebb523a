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
    scale = result["scale"]
    assert scale["source"].startswith("mix of") and scale["queries"] == 200  # real vectors and queries
    assert 0.5 < scale["hnsw"]["recall@10"] <= 1.0
    # The bound is on the codes; at smoke size the trained centroids dominate the file.
    assert scale["ivfpq48"]["code_bytes"] == 48 and scale["ivfpq64"]["code_bytes"] == 64
    assert scale["bm25"]["rows"] == 5_000 and scale["bm25"]["latency"]["n"] == 200
    assert "skipped" in result["gpu"] or result["gpu"]["tokens_per_s"] > 0

    from bench.report import write_readme

    write_readme(result, readme, "test-smoke.json")
    table = readme.read_text(encoding="utf-8")
    assert "ours-int8-hybrid" in table and "langchain-hybrid" in table and "requests/s" in table
