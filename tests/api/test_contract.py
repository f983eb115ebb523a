"""The OpenAPI contract, checked by schemathesis against a live ``chimed-rag serve``: every check, a fixed
seed, a few hundred generated requests per route, and no failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("CHIMED_RAG_SCHEMATHESIS_EXAMPLES", "100"))


def test_schemathesis_all_checks_pass(server: str, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
           f"{server}/openapi.json", "--checks", "all", "--seed", "20261201", "--max-examples", str(EXAMPLES),
           "--workers", "1", "--request-timeout", "60"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-3000:]


def test_schema_declares_limits_errors_and_streams(server: str) -> None:
    schema = httpx.get(f"{server}/openapi.json").json()
    ask = schema["paths"]["/v1/ask"]["post"]
    assert {"400", "413", "422", "500", "503", "504"} <= set(ask["responses"])
    assert "text/event-stream" in ask["responses"]["200"]["content"]
    body = schema["components"]["schemas"]["AskRequest"]["properties"]
    assert body["question"]["maxLength"] == 200  # the server's CHIMED_RAG_MAX_QUESTION_CHARS
    assert body["top_k"]["minimum"] == 1 and body["top_k"]["maximum"] == 50
    assert body["history"]["maxItems"] == 10
    chat = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert chat["messages"]["maxItems"] == 41
    assert {"minimum": 1, "maximum": 32768}.items() <= chat["max_tokens"]["anyOf"][0].items()
    assert "x-setting-maxLength" not in str(schema)
    assert "/v1/completions" not in schema["paths"]  # the raw LLM proxy is off by default
