"""Markdown tables for bench/README.md from a results dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START, END = "<!-- results:start -->", "<!-- results:end -->"
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def render(results: dict[str, Any], source: str) -> str:
    m = results["machine"]
    lines = [f"Results of `{source}` ({m['date']}): {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
             f"load average {m['load_avg_1m']} at start, torch {m['torch']}, CUDA: {m['cuda'] or 'none'}. "
             f"Arguments: `{results['args']}`. Whole run: {results.get('total_s', '?')} s.", ""]
    for name, r in results.get("retrieval", {}).items():
        lines += [f"### {name} ({r['queries']} queries, {r['build_langchain']['chunks']} chunks)", ""]
        lines += _table(["system", *METRICS], [[k, *(v[x] for x in METRICS)] for k, v in r["quality"].items()])
        lines += ["", f"int8 hybrid keeps {r['ndcg_retention_int8_hybrid']} of the fp32 hybrid nDCG@10.", ""]
        if "seconds" in r:
            parts = ", ".join(f"{k} {v}" for k, v in r["seconds"].items())
            lines += [f"Wall time of this set's parts (s): {parts}.", ""]
        builds = [[k.removeprefix("build_"), v.get("passages_per_s", "reused"), v.get("seconds", "-"),
                   v.get("peak_rss_growth_mb", "-")] for k, v in r.items() if k.startswith("build_") and
                  isinstance(v, dict)]
        lines += _table(["build", "passages/s", "seconds", "peak RSS growth MB"], builds)
        lines += ["", f"Build ratio ours int8 / LangChain: {r['build_ratio_int8_vs_langchain']}; "
                  f"ours torch / LangChain: {r.get('build_ratio_torch_vs_langchain', 'not measured (reused)')}.", ""]
        if "latency" in r:
            ratios = r["latency_ratio_p50_vs_langchain_hybrid"]
            lines += _table(["query path", "p50 ms", "p95 ms", "p99 ms", "p50 / LangChain hybrid p50"],
                            [[k, v["p50_ms"], v["p95_ms"], v["p99_ms"], ratios.get(k, "")]
                             for k, v in r["latency"].items()])
            lines.append("")
    if "http" in results:
        h = results["http"]
        lines += [f"### HTTP (loopback, {h['search']['clients']} client threads, backend {h['backend']})", ""]
        lines += _table(["endpoint", "requests/s", "p50 ms", "p99 ms", "errors"],
                        [[k, v["requests_per_s"], v.get("p50_ms"), v.get("p99_ms"), v["errors"]]
                         for k, v in h.items() if isinstance(v, dict)])
        lines.append("")
    if "scale" in results:
        s = results["scale"]
        lines += [f"### Scale ({s['vectors']:,} synthetic chunks, dim {s['dimension']}, {s['queries']} queries)", "",
                  f"Vectors: {s['source']}. Exact search for the ground truth took {s['exact_search_s']} s.", ""]
        header = ["index", "build s", "peak RSS growth MB", "code bytes", "bytes/vector (all)", "p50 ms", "p99 ms",
                  "recall@10 vs exact"]
        dense = {k: v for k, v in s.items() if isinstance(v, dict) and "recall@10" in v}
        lines += _table(header, [[k, v["build_s"], v.get("peak_rss_growth_mb"), v["code_bytes"], v["bytes_per_vector"],
                                  v["latency"]["p50_ms"], v["latency"]["p99_ms"], v["recall@10"]]
                                 for k, v in dense.items()])
        if "bm25" in s:
            b = s["bm25"]
            lines += ["", f"BM25: {b['rows']:,} rows ({b['distinct_texts']:,} distinct real chunk texts repeated; "
                      f"analysing them took {b['analyse_distinct_s']} s), bm25s build {b['build_s']} s, "
                      f"peak RSS growth {b.get('peak_rss_growth_mb')} MB, query (analyse + score + top 10) "
                      f"p50 {b['latency']['p50_ms']} ms, p99 {b['latency']['p99_ms']} ms."]
        lines.append("")
    if "gpu" in results:
        lines += ["### GPU", "", str(results["gpu"]), ""]
    return "\n".join(lines)


def write_readme(results: dict[str, Any], path: Path, source: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{render(results, source)}\n{END}{tail}", encoding="utf-8")
