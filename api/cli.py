"""``chimed-rag``: build and inspect indexes, search, ask, evaluate retrieval, serve the API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexer.errors import IndexerError
from rag.settings import Settings
from rag.triage_model import DEFAULT_PATH as TRIAGE_MODEL


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("index_dir", "generator", "embedding_model", "faiss_type", "host", "port", "workers")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(**_overrides(args))


def _embedder(settings: Settings) -> Any:
    from indexer.embedding import SentenceTransformerEmbedder

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    return SentenceTransformerEmbedder(settings.embedder_config())


def cmd_index_build(args: argparse.Namespace) -> int:
    from indexer.build import build_index

    settings = _settings(args)
    corpus = args.corpus or settings.corpus
    out = args.out or settings.index_dir
    start = time.perf_counter()
    print(f"building index {out} from {', '.join(map(str, corpus))} ...", file=sys.stderr)
    config = settings.build_config()
    if args.skip_empty:
        config = dataclasses.replace(config, skip_empty=True)
    manifest = build_index(corpus, out, _embedder(settings), config, show_progress=True)
    counts = manifest["counts"]
    print(f"built index {manifest['index_id']} at {out}: {counts['documents']} documents, "
          f"{counts['chunks']} chunks in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from indexer.index_dir import read_manifest

    print(json.dumps(read_manifest(Path(args.dir)), ensure_ascii=False, indent=2))
    return 0


def _pipeline(args: argparse.Namespace) -> Any:
    from rag.pipeline import RAGPipeline

    return RAGPipeline.from_settings(_settings(args))


def cmd_search(args: argparse.Namespace) -> int:
    result = _pipeline(args).search(args.query, args.top_k, args.mode)
    for hit in result.hits:
        scores = ", ".join(f"{k}={v:.4f}" for k, v in hit.scores.items() if v is not None)
        print(f"{hit.rank:>3}  {hit.score:.4f}  {hit.passage.chunk_id}  《{hit.passage.title}》 ({scores})")
        print(f"     {hit.passage.text[:120].replace(chr(10), ' ')}")
    print(json.dumps(result.timings), file=sys.stderr)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from api.app import answer_json

    pipeline = _pipeline(args)
    answer = pipeline.ask(args.question, top_k=args.top_k, mode=args.mode, strict=args.strict or None,
                          trace=args.trace)
    if args.json:
        print(json.dumps(answer_json(answer, pipeline), ensure_ascii=False, indent=2))
        return 0
    from rag.pipeline import DISCLAIMER

    print(answer.answer or "（参考资料中没有找到相关内容）")  # safety advice, if any, leads the answer
    print()
    for c in answer.citations:
        print(f"[{c.marker}] 《{c.title}》 {c.chunk_id} ({c.source})")
    for sentence, support in zip(answer.sentences, answer.support):
        print(f"  {support.label:<11} {support.score:.2f}  {sentence.text[:40]}")
    if args.trace and answer.trace:
        print(json.dumps(answer.trace, ensure_ascii=False), file=sys.stderr)
    print(f"\n{DISCLAIMER}")
    return 0


def _jsonl(path: Path, read: Callable[[Any], Any], expected: str) -> list[Any]:
    """``read`` applied to each JSON line; any malformed line is reported by file and line number."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(read(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: expected {expected}") from exc
    return rows


def _questions(path: Path, key: str) -> list[str]:
    return _jsonl(path, lambda row: str(row[key]), f"a JSON object with {key!r}")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from rag.abstention import calibrate

    pipeline = _pipeline(args)
    answerable = [q for path in args.in_corpus for q in _questions(path, "question")]
    groups = ["questions"] * len(answerable)
    if args.titles:
        # The corpus' own topics, asked the way people ask: "<title>是什么？" and "<title>怎么办？".
        titles = sorted({p.title for p in pipeline.index.passages if p.title})
        answerable += [f"{t}{suffix}" for t in titles for suffix in ("是什么？", "怎么办？")]
        groups += ["titles"] * (len(answerable) - len(groups))
    unanswerable = _questions(args.out_of_corpus, "question")
    if not answerable or not unanswerable:
        raise ValueError("calibration needs both in-corpus and out-of-corpus questions")
    result = calibrate(pipeline.abstainer, answerable, unanswerable, pipeline.index.index_id, args.target,
                       groups=groups)
    path = result.save(args.out or pipeline.index.path)
    print(json.dumps({"saved": str(path), "threshold": result.threshold, **result.rates}, ensure_ascii=False))
    return 0


def _triage_case(row: Any) -> dict[str, Any]:
    if row["level"] not in ("emergency", "urgent", "routine") or not str(row["text"]).strip():
        raise ValueError("bad case")
    return dict(row)


def _triage_cases(paths: Sequence[Path]) -> list[dict[str, Any]]:
    expected = '{"text": ..., "level": emergency|urgent|routine}'
    return [case for path in paths for case in _jsonl(path, _triage_case, expected)]


def cmd_triage_fit(args: argparse.Namespace) -> int:
    from rag.triage import is_general_question
    from rag.triage_model import fit

    cases = _triage_cases(args.cases)
    embedder = _embedder(_settings(args))
    texts = [c["text"] for c in cases]
    description = embedder.describe()
    model = fit(texts, [c["level"] != "routine" for c in cases], embedder.embed_queries,
                {"model": description["model"], "dimension": description["dimension"]},
                covered=[is_general_question(t) for t in texts])
    path = model.save(args.out)
    print(json.dumps({"saved": str(path), "threshold": model.threshold, **model.rates}, ensure_ascii=False))
    return 0


def cmd_triage_eval(args: argparse.Namespace) -> int:
    from rag.triage import Triage
    from rag.triage_model import TriageModel

    cases = _triage_cases(args.cases)
    model = None if args.rules_only else TriageModel.load(args.model)
    embed = _embedder(_settings(args)).embed_queries if model else None
    triage = Triage(model=model, embed=embed)
    flagged = [triage.assess(c["text"]).level != "routine" for c in cases]
    alarms = [c["level"] != "routine" for c in cases]
    found = sum(f and a for f, a in zip(flagged, alarms))
    false = sum(f and not a for f, a in zip(flagged, alarms))
    report = {"cases": len(cases), "recall": found / max(1, sum(alarms)),
              "false_alarm": false / max(1, len(cases) - sum(alarms)), "model": model is not None}
    print(json.dumps(report, ensure_ascii=False))
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from indexer.index_dir import open_index
    from rag.evaluation import RetrievalEvaluator, read_qrels, read_queries
    from rag.retrievers import make_retrievers

    settings = _settings(args)
    index = open_index(args.index)
    from indexer.index_dir import check_embedding

    embedder = _embedder(settings)
    check_embedding(index.manifest, embedder.describe())
    retriever = make_retrievers(index, embedder, settings.hybrid_config())[args.mode]
    queries = read_queries(args.queries)
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    evaluator = RetrievalEvaluator(queries, read_qrels(args.qrels))
    start = time.perf_counter()
    scores = evaluator.run(retriever)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    if not args.json:
        for name, value in scores.items():
            print(f"{name:<12} {value}")
        print(f"({elapsed:.1f}s, mode={args.mode})")
    else:
        print(json.dumps({**scores, "mode": args.mode, "seconds": round(elapsed, 2)}))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from indexer.index_dir import MANIFEST

    settings = _settings(args)
    if not (Path(settings.index_dir) / MANIFEST).exists():
        if args.no_build:
            print(f"error: no index at {settings.index_dir}; run 'chimed-rag index build'", file=sys.stderr)
            return 2
        print(f"no index at {settings.index_dir}: building it from the shipped corpus first", file=sys.stderr)
        from indexer.build import build_index

        build_index(settings.corpus, settings.index_dir, _embedder(settings), settings.build_config(),
                    show_progress=True)
        # A fresh default index also gets its abstention thresholds, fitted on the shipped question sets.
        print("calibrating abstention on the shipped question sets ...", file=sys.stderr)
        if main(["calibrate", "--index", str(settings.index_dir)]) != 0:
            print("warning: calibration failed; the server will not abstain", file=sys.stderr)
    # Our JSON access log replaces uvicorn's; SIGTERM lets requests in flight finish (graceful timeout).
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": "info",
                              "access_log": not settings.access_log, "timeout_graceful_shutdown": 30}
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    # Each worker builds its own app from the environment: hand the command-line overrides down that way.
    for name, value in _overrides(args).items():
        os.environ[f"CHIMED_RAG_{name.upper()}"] = str(value)
    uvicorn.run("api.app:create_app", factory=True, workers=settings.workers, **common)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chimed-rag", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    index_parser = sub.add_parser("index", help="build or inspect an index")
    index = index_parser.add_subparsers(dest="index_command", required=True)
    build = index.add_parser("build", help="build an index from a corpus")
    build.add_argument("--corpus", nargs="+", type=Path, help="JSONL files or folders of Markdown/TXT")
    build.add_argument("--out", type=Path, help="index directory (default: settings.index_dir)")
    build.add_argument("--faiss-type", dest="faiss_type", choices=["flat", "hnsw", "ivfpq"])
    build.add_argument("--embedding-model", dest="embedding_model", help="hub id or local path")
    build.add_argument("--skip-empty", action="store_true", help="skip records with empty text (warn, not fail)")
    build.set_defaults(func=cmd_index_build)
    info = index.add_parser("info", help="print an index manifest")
    info.add_argument("dir", type=Path)
    info.set_defaults(func=cmd_index_info)

    def retrieval_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--index", dest="index_dir", type=Path, help="index directory")
        sp.add_argument("--mode", choices=["bm25", "dense", "hybrid"])
        sp.add_argument("--top-k", dest="top_k", type=int)

    search = sub.add_parser("search", help="retrieve passages for a query")
    search.add_argument("query")
    retrieval_args(search)
    search.set_defaults(func=cmd_search)

    ask = sub.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    retrieval_args(ask)
    ask.add_argument("--generator", choices=["extractive", "transformers"])
    ask.add_argument("--json", action="store_true")
    ask.add_argument("--strict", action="store_true", help="drop sentences the references do not support")
    ask.add_argument("--trace", action="store_true", help="also print the audit trace (stderr, JSON)")
    ask.set_defaults(func=cmd_ask)

    ev = sub.add_parser("eval", help="evaluate").add_subparsers(dest="eval_command", required=True)
    retr = ev.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 on queries + qrels")
    retr.add_argument("--index", required=True, type=Path)
    retr.add_argument("--queries", required=True, type=Path)
    retr.add_argument("--qrels", required=True, type=Path)
    retr.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default="hybrid")
    retr.add_argument("--limit", type=int, help="evaluate only the first N queries")
    retr.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    retr.set_defaults(func=cmd_eval_retrieval)

    cal = sub.add_parser("calibrate", help="fit the abstention thresholds on in- and out-of-corpus questions")
    cal.add_argument("--index", dest="index_dir", type=Path, help="index directory")
    cal.add_argument("--in-corpus", dest="in_corpus", nargs="+", type=Path,
                     default=sorted((Path(__file__).resolve().parent.parent / "tests/data/coverage").glob("*.jsonl")),
                     help="JSONL files of answerable questions ({\"question\": ...})")
    cal.add_argument("--out-of-corpus", dest="out_of_corpus", type=Path,
                     default=Path(__file__).resolve().parent.parent / "tests/data/out_of_corpus.jsonl")
    cal.add_argument("--no-titles", dest="titles", action="store_false", help="do not add corpus-title questions")
    cal.add_argument("--target", type=float, default=0.05, help="highest false-abstention rate allowed")
    cal.add_argument("--out", type=Path, help="folder for calibration.json (default: the index directory)")
    cal.set_defaults(func=cmd_calibrate)

    data = Path(__file__).resolve().parent.parent / "tests" / "data"
    triage = sub.add_parser("triage", help="the learned red-flag backstop").add_subparsers(
        dest="triage_command", required=True)
    tfit = triage.add_parser("fit", help="fit it on labelled cases ({\"text\", \"level\"} JSONL)")
    tfit.add_argument("--cases", nargs="+", type=Path,
                      default=[data / "triage.jsonl", data / "triage_blind_a.jsonl"])
    tfit.add_argument("--out", type=Path, default=TRIAGE_MODEL, help="model file (default: the shipped one)")
    tfit.set_defaults(func=cmd_triage_fit)
    teval = triage.add_parser("eval", help="recall and false-alarm rate of rules (+ model) on labelled cases")
    teval.add_argument("--cases", nargs="+", type=Path, default=[data / "triage_blind_b.jsonl"])
    teval.add_argument("--model", type=Path, default=TRIAGE_MODEL)
    teval.add_argument("--rules-only", action="store_true")
    teval.set_defaults(func=cmd_triage_eval)

    serve = sub.add_parser("serve", help="serve the HTTP API (builds the default index if missing)")
    serve.add_argument("--index", dest="index_dir", type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--generator", choices=["extractive", "transformers"])
    serve.add_argument("--workers", type=int, help="worker processes (default: CHIMED_RAG_WORKERS or 1)")
    serve.add_argument("--no-build", action="store_true", help="fail instead of building a missing index")
    serve.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("CHIMED_RAG_LOG_LEVEL", "WARNING"))
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (IndexerError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
