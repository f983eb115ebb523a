from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, wait_until_up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server_process(index_dir: Path, log: Path, env: dict[str, str],
                   args: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``chimed-rag serve`` in its own process on a free loopback port; yields its base URL and process."""
    port = free_port()
    cmd = [sys.executable, "-m", "api.cli", "serve", "--index", str(index_dir), "--port", str(port), "--no-build",
           *args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, log, lambda: _healthy(base), "server", poll=0.5)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_server(index_dir: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    """``chimed-rag serve`` in its own process on a free loopback port; yields its base URL."""
    with server_process(index_dir, log, env) as (base, _):
        yield base


@pytest.fixture(scope="session")
def server(corpus_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over the shipped-corpus index, with the extractive generator."""
    folder = tmp_path_factory.mktemp("server")
    env = {"CHIMED_RAG_MAX_QUESTION_CHARS": "200", "CHIMED_RAG_AUDIT_SECRET_FILE": str(folder / "audit.key")}
    with running_server(corpus_index.path, folder / "server.log", env) as base:
        yield base


@dataclass(frozen=True)
class Guarded:
    """A server with API keys, a rate limit, one answer at a time, trusted hosts and an audit file."""

    base: str
    keys: tuple[str, str]
    log: Path
    audit: Path
    secret: Path

    def headers(self, key: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}


@pytest.fixture(scope="session")
def guarded(corpus_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    folder = tmp_path_factory.mktemp("guarded")
    keys = ("key-for-tests-a", "key-for-tests-b")
    audit, secret = folder / "audit.jsonl", folder / "secrets" / "audit.key"
    env = {"CHIMED_RAG_API_KEYS": ",".join(keys), "CHIMED_RAG_RATE_LIMIT": "30/minute",
           "CHIMED_RAG_MAX_CONCURRENT": "1", "CHIMED_RAG_ALLOWED_HOSTS": "127.0.0.1,api.example",
           "CHIMED_RAG_AUDIT_LOG": str(audit), "CHIMED_RAG_AUDIT_SECRET_FILE": str(secret),
           "CHIMED_RAG_RAW_COMPLETIONS": "true"}
    with running_server(corpus_index.path, folder / "server.log", env) as base:
        yield Guarded(base, keys, folder / "server.log", audit, secret)
