"""The command line explains itself: help with defaults and an example everywhere, choices from the
project's registries, --version, every corpus error listed, one query-file reader."""

from __future__ import annotations

import argparse
import typing
from importlib.metadata import version
from pathlib import Path

import pytest

from api.cli import _HelpFormatter, _overrides, parser
from indexer.dense_index import FAISS_TYPES
from indexer.embedding import EMBEDDING_BACKENDS
from indexer.errors import CorpusErrors
from indexer.loaders import load_corpus
from rag.calibration import read_questions
from rag.evaluation import read_queries
from rag.pipeline import GENERATORS
from rag.retrievers import MODES
from rag.settings import Settings
from tests.api.test_cli import cli


def _leaves(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (command path, parser) of the tree, groups ("index", "eval", ...) included."""
    found = [(" ".join(path), p)]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _leaves(child, (*path, name))
    return found


COMMANDS = _leaves(parser())


@pytest.mark.parametrize(("name", "sub"), COMMANDS, ids=[n or "top" for n, _ in COMMANDS])
def test_every_option_has_help_a_default_and_the_command_an_example(name: str, sub: argparse.ArgumentParser) -> None:
    text = sub.format_help()
    assert "example:\n  chimed-rag" in text, name
    formatter = _HelpFormatter(sub.prog)
    for action in sub._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        shown = formatter._get_help_string(action)
        assert action.help and len(action.help) > 8, f"{name} {action.option_strings}: no help text"
        assert "(default" in shown or "(required)" in shown, f"{name} {action.option_strings}: no default: {shown}"
        assert action.option_strings[-1] in text


def test_help_shows_the_effective_setting_and_no_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    top = parser().format_help()
    assert "``" not in top and "chimed-rag:" in top
    monkeypatch.setenv("CHIMED_RAG_DEFAULT_TOP_K", "9")
    search = dict(_leaves(parser()))["search"].format_help()
    assert "(default: 9; setting default_top_k" in " ".join(search.split())


def test_choices_come_from_the_registries_the_settings_accept() -> None:
    tree = dict(COMMANDS)

    def choices(command: str, flag: str) -> list[str]:
        return next(list(a.choices) for a in tree[command]._actions if flag in a.option_strings)

    for command in ("search", "ask", "eval retrieval"):
        assert choices(command, "--mode") == list(MODES)
    assert choices("index build", "--faiss-type") == list(FAISS_TYPES)
    assert choices("index build", "--embedding-backend") == list(EMBEDDING_BACKENDS)
    assert choices("ask", "--generator") == choices("serve", "--generator") == list(GENERATORS)
    # The settings validate the same names (their Literal types must not drift from the registries).
    fields = Settings.model_fields
    for field, registry in (("default_mode", MODES), ("faiss_type", FAISS_TYPES), ("generator", GENERATORS),
                            ("embedding_backend", EMBEDDING_BACKENDS)):
        assert set(typing.get_args(fields[field].annotation)) == set(registry), field


def test_serve_accepts_every_generator() -> None:
    for name in GENERATORS:
        args = parser().parse_args(["serve", "--generator", name, "--port", "8123"])
        settings = Settings(**_overrides(args))
        assert (settings.generator, settings.port) == (name, 8123)
    shown = cli("serve", "--generator", "openai", "--help")
    assert shown.returncode == 0 and "openai" in shown.stdout


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"chimed-rag {version('chimed-rag')}"


def test_every_corpus_error_is_listed_and_nothing_is_built(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text('{"id": "ok", "text": "好。"}\n{"id": "b"}\n{"id": "c", "text": "也好。"}\n'
                                    '{not json\n', encoding="utf-8")
    (corpus / "b.jsonl").write_text('{"text": "没有编号。"}\n{"id": "b2", "text": "好的。"}\n', encoding="utf-8")
    (corpus / "c.jsonl").write_text('{"id": "c1", "text": "好的。"}\n{"id": "c1", "text": "重复。"}\n', "utf-8")
    result = cli("index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "--no-calibrate")
    assert result.returncode == 2, result.stderr
    for where, what in (("a.jsonl:2", "missing or empty 'text'"), ("a.jsonl:4", "invalid JSON"),
                        ("b.jsonl:1", "missing or empty 'id'"), ("c.jsonl:2", "duplicate document id 'c1'")):
        assert any(where in line and what in line for line in result.stderr.splitlines()), (where, result.stderr)
    assert "4 problems in the corpus" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "idx").exists()


def test_a_long_error_list_is_capped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(f'{{"id": "d{i}"}}\n' for i in range(CorpusErrors.CAP + 5)), encoding="utf-8")
    with pytest.raises(CorpusErrors) as err:
        load_corpus([bad])
    lines = str(err.value).splitlines()
    assert len(err.value.problems) == CorpusErrors.CAP + 5 and lines[-1].strip() == "… and 5 more"
    assert f"{bad}:{CorpusErrors.CAP}:" in str(err.value) and f"{bad}:{CorpusErrors.CAP + 1}:" not in str(err.value)


def test_query_files_take_text_or_question(tmp_path: Path) -> None:
    as_text, as_question = tmp_path / "t.jsonl", tmp_path / "q.jsonl"
    as_text.write_text('{"id": "1", "text": "头痛怎么办"}\n', encoding="utf-8")
    as_question.write_text('{"id": "1", "question": "头痛怎么办"}\n', encoding="utf-8")
    assert read_queries(as_text) == read_queries(as_question) == {"1": "头痛怎么办"}  # eval retrieval
    assert read_questions(as_text) == read_questions(as_question) == ["头痛怎么办"]  # calibrate
    neither = tmp_path / "n.jsonl"
    neither.write_text('{"id": "1", "question": "头痛"}\n{"id": "2", "query": "发烧"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"n\.jsonl:2: expected a JSON object with 'text' or 'question'"):
        read_questions(neither)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("1\tdoc\t1\n", encoding="utf-8")
    result = cli("eval", "retrieval", "--index", str(tmp_path / "none"), "--queries", str(neither),
                 "--qrels", str(qrels))
    assert result.returncode == 2 and f"{neither}:2:" in result.stderr and "'question'" in result.stderr
    assert "Traceback" not in result.stderr
