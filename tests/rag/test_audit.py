"""The audit log's privacy: keyed digests, a private key file and log file, safety as a level only."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

from pydantic import SecretStr

from rag.audit import AuditLog, load_secret
from rag.settings import Settings

TRACE = {"index_id": "x", "safety": {"level": "emergency", "signals": ["self_harm"], "advice": "拨打 12356"}}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_is_generated_private_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    first = load_secret(path)
    assert len(first) == 64 and mode(path) == 0o600 and mode(path.parent) == 0o700
    assert load_secret(path) == first  # a restart keeps it, so digests still match
    os.chmod(path, 0o644)
    assert load_secret(path) == first and mode(path) == 0o600  # a key others could read is made private


def test_digest_is_an_hmac_under_the_key(tmp_path: Path) -> None:
    log = AuditLog.from_settings(Settings(audit_secret_file=tmp_path / "audit.key"))
    key = (tmp_path / "audit.key").read_text().strip().encode()
    out = log.record(dict(TRACE), "感冒怎么处理？")
    assert out["question_hmac"] == hmac.new(key, "感冒怎么处理？".encode(), hashlib.sha256).hexdigest()
    assert out["question_hmac"] != hashlib.sha256("感冒怎么处理？".encode()).hexdigest()
    other = AuditLog.from_settings(Settings(audit_secret=SecretStr("another key")))
    assert other.record(dict(TRACE), "感冒怎么处理？")["question_hmac"] != out["question_hmac"]


def test_log_file_is_0600_and_holds_only_the_safety_level(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    settings = Settings(audit_log=path, audit_secret=SecretStr("k"))
    AuditLog.from_settings(settings).record(dict(TRACE), "我不想活了")
    assert mode(path) == 0o600
    line = json.loads(path.read_text("utf-8"))
    assert line["safety"] == {"level": "emergency"} and "我不想活了" not in path.read_text("utf-8")
    verbose = Settings(audit_log=tmp_path / "v.jsonl", audit_secret=SecretStr("k"), audit_log_signals=True)
    AuditLog.from_settings(verbose).record(dict(TRACE), "我不想活了")
    assert json.loads((tmp_path / "v.jsonl").read_text("utf-8"))["safety"]["signals"] == ["self_harm"]


def test_an_existing_world_readable_log_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)
    AuditLog(path, secret=b"k")
    assert mode(path) == 0o600
