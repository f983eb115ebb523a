"""The ``chimed-rag`` command line, run as a user runs it (a separate process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_index_build_info_search_ask_eval(tmp_path: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "idx"
    built = cli("index", "build", "--corpus", str(tiny_corpus), "--out", str(out), "--progress")
    assert built.returncode == 0, built.stderr
    assert "5 documents" in built.stderr
    # Labelled stages (forced on: stderr is no terminal here), our embedding bar, no model-loading noise.
    for label in ("1/4 files", "2/4 chunks", "3/4 embedding", "4/4 writing", "calibration: questions scored",
                  "calibration: folds"):
        assert f"{label}: 100%" in built.stderr, label
    assert "Loading weights" not in built.stderr and "Batches" not in built.stderr

    info = json.loads(cli("index", "info", str(out)).stdout)
    assert info["counts"]["chunks"] == 5 and info["faiss"]["type"] == "flat"

    found = cli("search", "血压高少吃盐", "--index", str(out), "--mode", "bm25", "--top-k", "2")
    assert found.returncode == 0, found.stderr
    assert "htn#0" in found.stdout.splitlines()[0]

    asked = cli("ask", "感冒要吃抗生素吗", "--index", str(out), "--json")
    assert asked.returncode == 0, asked.stderr
    assert "Loading weights" not in asked.stderr and "%|" not in asked.stderr  # no bars when not a terminal
    body = json.loads(asked.stdout)
    assert body["citations"][0]["doc_id"] == "cold" and "不是医生" in body["disclaimer"]

    queries = tmp_path / "q.jsonl"
    # "question" (calibrate's key) works as well as "text" (BEIR's)
    queries.write_text('{"id": "q1", "text": "高血压要少吃盐"}\n{"id": "q2", "question": "糖尿病怎么诊断"}\n',
                       encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\thtn\t1\nq2\tdm\t1\n", encoding="utf-8")
    evaluated = cli("eval", "retrieval", "--index", str(out), "--queries", str(queries), "--qrels", str(qrels),
                    "--mode", "hybrid", "--json", "--progress")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "queries evaluated: 100%" in evaluated.stderr and "Loading weights" not in evaluated.stderr
    scores = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert set(scores) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert scores["mrr@10"] == 1.0 and scores["queries"] == 2


def test_bad_input_gives_a_message_and_non_zero_exit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "好。"}\n{"id": "b"}\n', encoding="utf-8")
    result = cli("index", "build", "--corpus", str(bad), "--out", str(tmp_path / "idx"))
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr and "missing or empty 'text'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "idx").exists()

    missing = cli("index", "info", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no index here" in missing.stderr

    no_index = cli("serve", "--index", str(tmp_path / "nope"), "--no-build")
    assert no_index.returncode == 2 and "no index" in no_index.stderr
    typo = cli("serve", "--index", str(tmp_path / "indxes" / "default"))  # building needs --build
    assert typo.returncode == 2 and "--build" in typo.stderr and not (tmp_path / "indxes").exists()


def test_index_add_and_delete_messages(tmp_path: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "idx"
    assert cli("index", "build", "--corpus", str(tiny_corpus), "--out", str(out), "--no-calibrate").returncode == 0
    unknown = cli("index", "delete", "--index", str(out), "--doc-id", "nope", "--no-calibrate")
    assert unknown.returncode == 2 and "no such document" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "z"}\n', encoding="utf-8")
    rejected = cli("index", "add", "--index", str(out), str(bad), "--no-calibrate")
    assert rejected.returncode == 2 and f"{bad}:1" in rejected.stderr
    deleted = cli("index", "delete", "--index", str(out), "--doc-id", "dm", "--no-calibrate")
    assert deleted.returncode == 0 and "generation 2" in deleted.stderr and "NOT calibrated" in deleted.stderr
    info = json.loads(cli("index", "info", str(out)).stdout)
    assert "dm" not in info["documents"] and info["counts"]["documents"] == 4


def test_serve_settings_come_from_env_and_file(tmp_path: Path) -> None:
    config = tmp_path / "chimed.toml"
    config.write_text('default_top_k = 7\ngenerator = "extractive"\nmax_question_chars = 300\n', encoding="utf-8")
    code = ("from rag.settings import Settings; s = Settings(); "
            "print(s.default_top_k, s.max_question_chars, s.generator, s.port)")
    env = {"CHIMED_RAG_CONFIG": str(config), "CHIMED_RAG_MAX_QUESTION_CHARS": "500", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["7", "500", "extractive", "8000"]  # env beats file beats defaults


def test_triage_eval_and_a_bad_case_file(tmp_path: Path) -> None:
    rules = cli("triage", "eval", "--rules-only")  # the blind set by default
    assert rules.returncode == 0, rules.stderr
    report = json.loads(rules.stdout)
    assert report["cases"] == 70 and report["model"] is False and 0 < report["recall"] <= 1
    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"text": "胸口疼", "level": "emergency"}\n{"text": "头痛", "level": "soon"}\n', "utf-8")
    trained = cli("train", "triage", "--cases", str(bad), "--out", str(tmp_path / "m"))
    assert trained.returncode == 2 and "cases.jsonl:2" in trained.stderr and "Traceback" not in trained.stderr
    assert not (tmp_path / "m").exists()


def test_an_unreadable_document_is_one_line_and_nothing_is_built(tmp_path: Path) -> None:
    from tests.indexer.formats import samples

    corpus = tmp_path / "docs"
    corpus.mkdir()
    samples.two_column_pdf(corpus / "ok.pdf")
    samples.encrypted_pdf(corpus / "locked.pdf")
    result = cli("index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "--no-calibrate")
    assert result.returncode == 2, result.stderr
    assert ("locked.pdf: the PDF is encrypted (password-protected); remove the password and upload it again"
            in result.stderr)
    assert "Traceback" not in result.stderr and not (tmp_path / "idx").exists()
