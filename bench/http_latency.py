"""Sequential latency of /v1/search and /v1/ask against a running server (loopback only).

    python bench/http_latency.py --base http://127.0.0.1:8000 --rounds 3

Questions are the corpus coverage questions (tests/data/coverage); each is sent ``rounds`` times
(the first round is a warm-up and is not counted). Prints and optionally writes p50/p95/mean in ms.
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


def measure(client: httpx.Client, path: str, key: str, texts: list[str], rounds: int) -> dict[str, float]:
    samples: list[float] = []
    for round_no in range(rounds):
        for text in texts:
            start = time.perf_counter()
            response = client.post(path, json={key: text})
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            if round_no > 0:
                samples.append(elapsed)
    samples.sort()
    return {"n": len(samples), "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2), "mean_ms": round(statistics.fmean(samples), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("this benchmark only targets a server on loopback")
    texts = questions()
    with httpx.Client(base_url=args.base, timeout=60) as client:
        result = {"search": measure(client, "/v1/search", "query", texts, args.rounds),
                  "ask": measure(client, "/v1/ask", "question", texts, args.rounds)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
