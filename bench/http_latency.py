"""Sequential latency of /v1/search and /v1/ask against a running server (loopback only).

    python bench/http_latency.py --base http://127.0.0.1:8000 --rounds 3

Questions are the corpus coverage questions (tests/data/coverage); each is sent ``rounds`` times after
a short warm-up on other text. The first round is reported as ``cold`` (the query embedding is computed), later
rounds as ``repeat`` (served from the embedder's query cache). Prints and optionally writes p50/p95/mean in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def questions() -> list[str]:
    files = sorted((ROOT / "tests" / "data" / "coverage").glob("*.jsonl"))
    return [json.loads(line)["question"] for f in files for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"n": len(samples), "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2), "mean_ms": round(statistics.fmean(samples), 2)}


def measure(client: httpx.Client, path: str, key: str, texts: list[str], rounds: int) -> dict[str, object]:
    for warm in ("预热请求一", "预热请求二", "预热请求三"):
        client.post(path, json={key: warm}).raise_for_status()
    cold: list[float] = []
    repeat: list[float] = []
    for round_no in range(rounds):
        for text in texts:
            start = time.perf_counter()
            response = client.post(path, json={key: text})
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            (cold if round_no == 0 else repeat).append(elapsed)
    return {"cold": summary(cold), **({"repeat": summary(repeat)} if repeat else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--endpoint", choices=["search", "ask", "both"], default="both",
                        help="one endpoint per fresh server gives cold numbers for it (they share the query cache)")
    args = parser.parse_args()
    if not args.base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("this benchmark only targets a server on loopback")
    texts = questions()
    with httpx.Client(base_url=args.base, timeout=60) as client:
        result = {}
        if args.endpoint in ("search", "both"):
            result["search"] = measure(client, "/v1/search", "query", texts, args.rounds)
        if args.endpoint in ("ask", "both"):
            result["ask"] = measure(client, "/v1/ask", "question", texts, args.rounds)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
