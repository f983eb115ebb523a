"""``chimed-rag``: build and inspect indexes, search, ask, evaluate retrieval, serve the API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexer.errors import IndexerError
from rag.settings import Settings
from rag.triage_model import DEFAULT_PATH as TRIAGE_MODEL
from rag.triage_model import TRAINING_SETS as TRIAGE_TRAINING


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("index_dir", "generator", "embedding_model", "faiss_type", "host", "port", "workers")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(**_overrides(args))


def _embedder(settings: Settings, index_dir: Path | None = None) -> Any:
    """``index_dir``: an existing index whose recorded encoder the "auto" backend follows."""
    from indexer.embedding import SentenceTransformerEmbedder
    from indexer.index_dir import MANIFEST

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    built = None
    if index_dir is not None and (Path(index_dir) / MANIFEST).is_file():
        built = json.loads((Path(index_dir) / MANIFEST).read_text("utf-8")).get("embedding")
    return SentenceTransformerEmbedder(settings.embedder_config(built))


def _finalize(args: argparse.Namespace, settings: Settings, embedder: Any) -> Any:
    """Refit abstention on the staged generation unless told not to (then say so, loudly)."""
    if getattr(args, "no_calibrate", False):
        print("warning: publishing without abstention calibration: the server will not abstain until "
              "'chimed-rag calibrate' runs", file=sys.stderr)
        return None
    from rag.calibration import refit

    return refit(embedder, settings)


def _report(action: str, manifest: dict[str, Any], out: Path, start: float) -> None:
    counts, update = manifest["counts"], manifest.get("update", {})
    calibrated = "calibrated" if "calibration" in manifest else "NOT calibrated"
    print(f"{action} index {manifest['index_id']} generation {manifest['generation']} at {out} "
          f"({update.get('kind', '?')}: {update.get('upserted_count', 0)} documents embedded, "
          f"{len(update.get('deleted', []))} deleted; {calibrated}): {counts['documents']} documents, "
          f"{counts['chunks']} chunks in {time.perf_counter() - start:.1f}s", file=sys.stderr)


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
    embedder = _embedder(settings)
    manifest = build_index(corpus, out, embedder, config, show_progress=True,
                           finalize=_finalize(args, settings, embedder))
    _report("built", manifest, out, start)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    from indexer.build import add_documents
    from indexer.loaders import load_corpus

    settings = _settings(args)
    documents = load_corpus(args.paths, show_progress=True)  # input errors before anything is written
    start = time.perf_counter()
    embedder = _embedder(settings, settings.index_dir)
    manifest = add_documents(settings.index_dir, documents, embedder, finalize=_finalize(args, settings, embedder),
                             store=settings.store_config())
    _report("updated", manifest, settings.index_dir, start)
    return 0


def cmd_index_delete(args: argparse.Namespace) -> int:
    from indexer.build import delete_documents

    settings = _settings(args)
    start = time.perf_counter()
    embedder = _embedder(settings, settings.index_dir)
    manifest = delete_documents(settings.index_dir, args.doc_ids, embedder,
                                finalize=_finalize(args, settings, embedder), store=settings.store_config())
    _report("updated", manifest, settings.index_dir, start)
    return 0


def cmd_index_verify(args: argparse.Namespace) -> int:
    """Every file's hash and size, every record parsed, stores vs chunk store; exit 1 naming the bad file."""
    from indexer.index_dir import open_index
    from rag.abstention import Calibration

    start = time.perf_counter()
    try:
        # strict: a shared store (Milvus) must hold exactly this generation's chunks
        index = open_index(args.dir, verify="full", store=Settings().store_config(), strict=True)
        calibration = Calibration.load(index.path)
    except IndexerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "none" if calibration is None else ("valid" if calibration.index_id == index.index_id else "stale")
    print(json.dumps({"ok": True, "index_id": index.index_id, "generation": index.generation,
                      "files": len(index.manifest["files"]), "chunks": len(index.passages),
                      "vectors": index.dense.count(), "bm25_rows": index.sparse.count(), "calibration": state,
                      "store": index.manifest.get("store", {"type": "faiss"}),
                      "seconds": round(time.perf_counter() - start, 3)}))
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
        where = hit.passage.locator().label()
        print(f"{hit.rank:>3}  {hit.score:.4f}  {hit.passage.chunk_id}  《{hit.passage.title}》{where} ({scores})")
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
        print(f"[{c.marker}] 《{c.title}》{c.locator.label()} {c.chunk_id} ({c.source})")
    for sentence, support in zip(answer.sentences, answer.support):
        print(f"  {support.label:<11} {support.score:.2f}  {sentence.text[:40]}")
    if args.trace and answer.trace:
        print(json.dumps(answer.trace, ensure_ascii=False), file=sys.stderr)
    print(f"\n{DISCLAIMER}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit abstention on the live generation; publish it as a new generation (or write it to --out)."""
    from indexer.build import republish
    from indexer.index_dir import CALIBRATION_FILE, check_embedding, open_index
    from rag.calibration import QuestionSets, fit

    settings = _settings(args)
    index = open_index(settings.index_dir, verify="full", store=settings.store_config())
    embedder = _embedder(settings, index.path)
    check_embedding(index.manifest, embedder.describe(), embedder.fallback_reason)
    sets = QuestionSets(tuple(args.in_corpus), args.out_of_corpus, args.titles, args.target)
    result = fit(index, embedder, settings, sets)
    if args.out:
        saved = str(result.save(args.out))
    else:
        manifest = republish(settings.index_dir, {CALIBRATION_FILE: result.dumps().encode("utf-8")}, "calibrate")
        saved = f"{settings.index_dir} generation {manifest['generation']}"
    print(json.dumps({"saved": saved, "threshold": result.threshold, **result.rates}, ensure_ascii=False))
    return 0


def _triage_case(row: Any) -> dict[str, Any]:
    if row["level"] not in ("emergency", "urgent", "routine") or not str(row["text"]).strip():
        raise ValueError("bad case")
    return dict(row)


def _triage_cases(paths: Sequence[Path]) -> list[dict[str, Any]]:
    expected = '{"text": ..., "level": emergency|urgent|routine}'
    from rag.calibration import read_jsonl

    return [case for path in paths for case in read_jsonl(path, _triage_case, expected)]


def cmd_triage_fit(args: argparse.Namespace) -> int:
    from rag.triage import is_general_question
    from rag.triage_model import fit

    cases = _triage_cases(args.cases)
    embedder = _embedder(_settings(args))
    texts = [c["text"] for c in cases]
    description = embedder.describe()
    model = fit(texts, [c["level"] for c in cases], embedder.embed_queries,
                {"model": description["model"], "dimension": description["dimension"]},
                covered=[is_general_question(t) for t in texts])
    path = model.save(args.out)
    print(json.dumps({"saved": str(path), "threshold": model.threshold, **model.rates}, ensure_ascii=False))
    return 0


def _triage_rates(got: Sequence[str], want: Sequence[str]) -> dict[str, float]:
    """recall / false_alarm over any flag, and how the emergencies themselves were rated."""
    alarms = [w != "routine" for w in want]
    flagged = [g != "routine" for g in got]
    emergencies = [g for g, w in zip(got, want) if w == "emergency"]
    n = max(1, len(emergencies))
    return {"recall": sum(f and a for f, a in zip(flagged, alarms)) / max(1, sum(alarms)),
            "false_alarm": sum(f and not a for f, a in zip(flagged, alarms)) / max(1, len(want) - sum(alarms)),
            "emergency_as_emergency": emergencies.count("emergency") / n,
            "emergency_as_routine": emergencies.count("routine") / n}


def cmd_triage_eval(args: argparse.Namespace) -> int:
    from rag.triage import Triage
    from rag.triage_model import TriageModel

    cases = _triage_cases(args.cases)
    model = None if args.rules_only else TriageModel.load(args.model)
    embed = _embedder(_settings(args)).embed_queries if model else None
    triage = Triage(model=model, embed=embed)
    levels = [triage.assess(c["text"]).level for c in cases]
    report = {"cases": len(cases), **_triage_rates(levels, [c["level"] for c in cases]), "model": model is not None}
    if args.show_missed:  # the emergencies not rated emergency, for reading (never for tuning on a blind set)
        report["missed"] = [{"text": c["text"], "rated": got} for c, got in zip(cases, levels)
                            if c["level"] == "emergency" and got != "emergency"]
    print(json.dumps(report, ensure_ascii=False))
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from indexer.index_dir import open_index
    from rag.evaluation import RetrievalEvaluator, read_qrels, read_queries
    from rag.retrievers import make_retrievers

    settings = _settings(args)
    index = open_index(args.index, store=settings.store_config())
    from indexer.index_dir import check_embedding

    embedder = _embedder(settings, index.path)
    check_embedding(index.manifest, embedder.describe(), embedder.fallback_reason)
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
        # Never build at a path nobody asked for (a typo would silently get a fresh index).
        if not args.build:
            print(f"error: no index at {settings.index_dir}; build one with 'chimed-rag index build "
                  f"--out {settings.index_dir}' or pass --build", file=sys.stderr)
            return 2
        print(f"no index at {settings.index_dir}: building and calibrating it from {settings.corpus}",
              file=sys.stderr)
        from indexer.build import build_index
        from rag.calibration import refit

        embedder = _embedder(settings)
        build_index(settings.corpus, settings.index_dir, embedder, settings.build_config(), show_progress=True,
                    finalize=refit(embedder, settings))
    from rag.live import LiveIndex

    # Our JSON access log replaces uvicorn's; SIGTERM lets requests in flight finish (graceful timeout).
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": "info",
                              "access_log": not settings.access_log,
                              "timeout_graceful_shutdown": int(settings.shutdown_grace) or None}
    if settings.workers > 1:
        # Each worker builds its own app (and live index) from the environment: hand the overrides down that way.
        for name, value in _overrides(args).items():
            os.environ[f"CHIMED_RAG_{name.upper()}"] = str(value)
        uvicorn.run("api.app:create_app", factory=True, workers=settings.workers, **common)
        return 0
    app = create_app(settings, live=LiveIndex.open(settings))  # a bad index: one line and exit 2, not a trace
    _reload_on_signals(app)
    uvicorn.Server(uvicorn.Config(app, **common)).run()  # SIGTERM/SIGINT: stop accepting, finish in flight
    return 0


def _reload_on_signals(app: Any) -> None:
    """SIGHUP / SIGUSR1 / SIGUSR2 ask for a reload instead of killing the server (their default)."""
    import signal

    def handler(signum: int, _frame: Any) -> None:
        live = getattr(app.state, "live", None)
        if live is not None:
            live.request_reload()

    for name in ("SIGHUP", "SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chimed-rag", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    index_parser = sub.add_parser("index", help="build or inspect an index")
    index = index_parser.add_subparsers(dest="index_command", required=True)
    build = index.add_parser("build", help="build an index from a corpus")
    build.add_argument("--corpus", nargs="+", type=Path,
                       help="files or folders: JSONL, Markdown/TXT, PDF, DOCX, HTML, XLSX/CSV")
    build.add_argument("--out", type=Path, help="index directory (default: settings.index_dir)")
    build.add_argument("--faiss-type", dest="faiss_type", choices=["flat", "hnsw", "ivfpq"])
    build.add_argument("--embedding-model", dest="embedding_model", help="hub id or local path")
    build.add_argument("--skip-empty", action="store_true", help="skip records with empty text (warn, not fail)")
    no_calibrate_help = "publish without refitting abstention (the server then warns and does not abstain)"
    build.add_argument("--no-calibrate", action="store_true", help=no_calibrate_help)
    build.set_defaults(func=cmd_index_build)
    add = index.add_parser("add", help="add new or changed documents (only those are chunked and embedded)")
    add.add_argument("--index", dest="index_dir", type=Path, help="index directory (default: settings.index_dir)")
    add.add_argument("paths", nargs="+", type=Path, help="files or folders (any format index build reads)")
    add.add_argument("--no-calibrate", action="store_true", help=no_calibrate_help)
    add.set_defaults(func=cmd_index_add)
    delete = index.add_parser("delete", help="delete documents by id")
    delete.add_argument("--index", dest="index_dir", type=Path, help="index directory (default: settings.index_dir)")
    delete.add_argument("--doc-id", dest="doc_ids", nargs="+", required=True, metavar="ID")
    delete.add_argument("--no-calibrate", action="store_true", help=no_calibrate_help)
    delete.set_defaults(func=cmd_index_delete)
    info = index.add_parser("info", help="print an index manifest")
    info.add_argument("dir", type=Path)
    info.set_defaults(func=cmd_index_info)
    verify = index.add_parser("verify", help="check every file's SHA-256 and size and the stores' consistency")
    verify.add_argument("dir", type=Path)
    verify.set_defaults(func=cmd_index_verify)

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
                      default=[data / name for name in TRIAGE_TRAINING])
    tfit.add_argument("--out", type=Path, default=TRIAGE_MODEL, help="model file (default: the shipped one)")
    tfit.set_defaults(func=cmd_triage_fit)
    teval = triage.add_parser("eval", help="recall and false-alarm rate of rules (+ model) on labelled cases")
    teval.add_argument("--cases", nargs="+", type=Path, default=[data / "triage_blind_b.jsonl"])
    teval.add_argument("--model", type=Path, default=TRIAGE_MODEL)
    teval.add_argument("--rules-only", action="store_true")
    teval.add_argument("--show-missed", action="store_true", help="list the emergencies not rated emergency")
    teval.set_defaults(func=cmd_triage_eval)

    serve = sub.add_parser("serve", help="serve the HTTP API over the live index (hot-reloads new generations)")
    serve.add_argument("--index", dest="index_dir", type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--generator", choices=["extractive", "transformers"])
    serve.add_argument("--build", action="store_true", help="build and calibrate the index first if it is missing")
    serve.add_argument("--no-build", action="store_true", help="(the default) fail when the index is missing")
    serve.add_argument("--workers", type=int, help="worker processes (default: CHIMED_RAG_WORKERS or 1)")
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
