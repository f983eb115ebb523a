from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(index_dir: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    """``chimed-rag serve`` in its own process on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "api.cli", "serve", "--index", str(index_dir), "--port", str(port), "--no-build"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="session")
def server(corpus_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over the shipped-corpus index, with the extractive generator."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(corpus_index.path, log, {"CHIMED_RAG_MAX_QUESTION_CHARS": "200"}) as base:
        yield base
