"""Integrity: every damaged file is named in a one-line error, by open_index and `chimed-rag index verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.build import build_index, republish
from indexer.embedding import SentenceTransformerEmbedder
from indexer.errors import IndexFormatError, IntegrityError
from indexer.index_dir import CALIBRATION_FILE, open_index
from rag.retrievers import make_retrievers
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def pristine(tiny_corpus: Path, embedder: SentenceTransformerEmbedder,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pristine")
    build_index([tiny_corpus], folder / "idx", embedder)
    return folder


@pytest.fixture()
def index(pristine: Path, tmp_path: Path) -> Path:
    """A private copy (link + generations) of the tiny index to damage."""
    shutil.copytree(pristine, tmp_path / "copy", symlinks=True)
    return tmp_path / "copy" / "idx"


def verify_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "index", "verify", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def swap_two_lines(root: Path) -> None:
    lines = (root / "chunks.jsonl").read_text("utf-8").splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    (root / "chunks.jsonl").write_text("".join(lines), "utf-8")


def edit_chunk(root: Path) -> None:
    text = (root / "chunks.jsonl").read_text("utf-8")
    (root / "chunks.jsonl").write_text(text.replace("每天食盐不超过5克", "每日服用氨氯地平100片"), "utf-8")


def flip_bytes(root: Path) -> None:
    data = bytearray((root / "dense.faiss").read_bytes())
    for i in range(200, 240):
        data[i] ^= 0xFF
    (root / "dense.faiss").write_bytes(bytes(data))


def truncate_faiss(root: Path) -> None:
    data = (root / "dense.faiss").read_bytes()
    (root / "dense.faiss").write_bytes(data[: len(data) // 2])


def remove_lexicon(root: Path) -> None:
    (root / "lexicon" / "user_dict.txt").unlink()


@pytest.mark.parametrize(("damage", "file", "needle"), [
    (swap_two_lines, "chunks.jsonl", "SHA-256 differs"),
    (edit_chunk, "chunks.jsonl", "size"),
    (flip_bytes, "dense.faiss", "SHA-256 differs"),
    (truncate_faiss, "dense.faiss", "size"),
    (remove_lexicon, "lexicon/user_dict.txt", "missing"),
])
def test_damage_is_caught_and_named(index: Path, damage: Callable[[Path], None], file: str, needle: str) -> None:
    damage(index.resolve())
    with pytest.raises(IntegrityError, match=needle) as caught:
        open_index(index, verify="full")
    message = str(caught.value)
    assert file in message and "\n" not in message


def test_without_hashes_the_damage_still_gets_a_clear_error(index: Path) -> None:
    root = index.resolve()
    truncate_faiss(root)
    with pytest.raises(IndexFormatError, match=r"dense\.faiss: unreadable FAISS file"):
        open_index(index, verify="none")
    shutil.copy(root / "chunks.jsonl", root / "chunks.bak")
    (root / "chunks.jsonl").write_text((root / "chunks.bak").read_text("utf-8") + "{not json\n", "utf-8")
    with pytest.raises(IndexFormatError, match=r"chunks\.jsonl:6: not a chunk record"):
        open_index(index, verify="none")


def test_swapped_chunk_lines_cannot_mix_up_passages(index: Path, embedder: SentenceTransformerEmbedder) -> None:
    """Stores are keyed by chunk id, not line number: even unverified, the right passage comes back."""
    swap_two_lines(index.resolve())
    hybrid = make_retrievers(open_index(index, verify="none"), embedder)["hybrid"]
    top = hybrid.search("高血压吃什么药", 1)[0].passage
    assert top.doc_id == "htn" and "血压" in top.text


def test_verify_cli(index: Path) -> None:
    ok = verify_cli(index)
    assert ok.returncode == 0, ok.stderr
    assert '"ok": true' in ok.stdout and '"vectors": 5' in ok.stdout
    flip_bytes(index.resolve())
    bad = verify_cli(index)
    assert bad.returncode == 1 and "dense.faiss" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_serve_refuses_a_damaged_index_in_one_line(index: Path) -> None:
    truncate_faiss(index.resolve())
    served = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--index", str(index)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert served.returncode == 2 and "dense.faiss" in served.stderr and "Traceback" not in served.stderr


def test_garbage_calibration_is_named(index: Path) -> None:
    republish(index, {CALIBRATION_FILE: b"{\"coef\": [1, 2]}"}, "calibrate")  # hashes match: the content is bad
    bad = verify_cli(index)
    assert bad.returncode == 1 and CALIBRATION_FILE in bad.stderr and "Traceback" not in bad.stderr
