"""The chimed-rag command line: build and inspect indexes, search, ask, evaluate retrieval, serve the API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from indexer.errors import IndexerError
from rag.settings import Settings
from rag.triage_model import DEFAULT_PATH as TRIAGE_MODEL
from rag.triage_model import TRAINING_SETS as TRIAGE_TRAINING

DESCRIPTION = """chimed-rag: retrieval-augmented Chinese medical QA with cited, checked answers.

Build an index of your documents, search it, ask questions, evaluate retrieval, calibrate abstention
and serve the HTTP API. Every option's default comes from the settings (defaults < TOML file named by
CHIMED_RAG_CONFIG < CHIMED_RAG_* environment variables); the value shown is the one in effect now."""


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("index_dir", "generator", "embedding_model", "embedding_backend", "faiss_type", "host", "port", "workers")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(**_overrides(args))


def _progress(args: argparse.Namespace, settings: Settings) -> bool:
    """Progress bars on stderr: --quiet / --progress, else the setting (auto: only when stderr is a terminal)."""
    if getattr(args, "quiet", False):
        return False
    mode = "always" if getattr(args, "progress", False) else settings.progress
    return mode == "always" or (mode == "auto" and sys.stderr.isatty())


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


def _finalize(args: argparse.Namespace, settings: Settings, embedder: Any, show_progress: bool = False) -> Any:
    """Refit abstention on the staged generation unless told not to (then say so, loudly)."""
    if getattr(args, "no_calibrate", False):
        print("warning: publishing without abstention calibration: the server will not abstain until "
              "'chimed-rag calibrate' runs", file=sys.stderr)
        return None
    from rag.calibration import refit

    return refit(embedder, settings, show_progress=show_progress)


def _report(action: str, manifest: dict[str, Any], out: Path, start: float) -> None:
    counts, update = manifest["counts"], manifest.get("update", {})
    calibrated = "calibrated" if "calibration" in manifest else "NOT calibrated"
    print(f"{action} index {manifest['index_id']} generation {manifest['generation']} at {out} "
          f"({update.get('kind', '?')}: {update.get('upserted_count', 0)} documents embedded, "
          f"{len(update.get('deleted', []))} deleted; {calibrated}): {counts['documents']} documents, "
          f"{counts['chunks']} chunks in {time.perf_counter() - start:.1f}s", file=sys.stderr)


def cmd_index_build(args: argparse.Namespace) -> int:
    from indexer.build import build_index
    from indexer.loaders import load_corpus

    settings = _settings(args)
    corpus, out, progress = args.corpus or settings.corpus, settings.index_dir, _progress(args, settings)
    start = time.perf_counter()
    print(f"building index {out} from {', '.join(map(str, corpus))} ...", file=sys.stderr)
    config = settings.build_config()
    if args.skip_empty:
        config = dataclasses.replace(config, skip_empty=True)
    # Every input error before the model loads (seconds, not a minute)
    documents = load_corpus(corpus, skip_empty=config.skip_empty, show_progress=progress)
    embedder = _embedder(settings)
    manifest = build_index(corpus, out, embedder, config, show_progress=progress,
                           finalize=_finalize(args, settings, embedder, progress), documents=documents)
    _report("built", manifest, out, start)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    from indexer.build import add_documents
    from indexer.loaders import load_corpus

    settings = _settings(args)
    progress = _progress(args, settings)
    documents = load_corpus(args.paths, show_progress=progress)  # input errors before anything is written
    start = time.perf_counter()
    embedder = _embedder(settings, settings.index_dir)
    manifest = add_documents(settings.index_dir, documents, embedder, show_progress=progress,
                             finalize=_finalize(args, settings, embedder, progress), store=settings.store_config())
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
    result = fit(index, embedder, settings, sets, show_progress=_progress(args, settings))
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


def cmd_train_triage(args: argparse.Namespace) -> int:
    from rag.triage import is_general_question
    from rag.triage_train import TriageTrainConfig, train

    _check_device(args.device)
    if args.folds < 2:
        raise ValueError("--folds: cross-validation needs at least 2 folds")
    cases = _triage_cases(args.cases)
    texts = [c["text"] for c in cases]
    config = TriageTrainConfig(out=args.out, seed=args.seed, device=args.device, epochs=args.epochs,
                               folds=args.folds, lora_r=args.lora_r, cache_dir=_settings(args).cache_dir)
    summary = train(texts, [c["level"] for c in cases], [is_general_question(t) for t in texts], config,
                    sources=[p.name for p in args.cases])
    print(json.dumps(summary, indent=2, ensure_ascii=False))
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
    from rag.triage_model import TriageModel, model_encoder

    cases = _triage_cases(args.cases)
    model = None if args.rules_only else TriageModel.load(args.model)
    embed = model_encoder(model, _settings(args).embedder_config()).embed_queries if model else None
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
    from rag.normalise import load_normaliser
    from rag.retrievers import make_retrievers

    settings = _settings(args)
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)  # bad input fails before the model loads
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    index = open_index(args.index, store=settings.store_config())
    from indexer.index_dir import check_embedding

    embedder = _embedder(settings, index.path)
    check_embedding(index.manifest, embedder.describe(), embedder.fallback_reason)
    # The same query-side normalisation as the pipeline (CHIMED_RAG_COLLOQUIAL= turns it off).
    normaliser = load_normaliser(settings.colloquial)
    retriever = make_retrievers(index, embedder, settings.hybrid_config(), normaliser)[args.mode]
    if settings.rerank_model:  # the pipeline's optional stage (CHIMED_RAG_RERANK_MODEL / _RERANK_CANDIDATES)
        from rag.rerank import CrossEncoderReranker, RerankConfig, RerankingRetriever

        reranker = CrossEncoderReranker(RerankConfig(settings.rerank_model, settings.rerank_candidates,
                                                     cache_dir=str(settings.cache_dir)))
        retriever = RerankingRetriever(retriever, reranker, settings.rerank_candidates)  # type: ignore[assignment]
    evaluator = RetrievalEvaluator(queries, qrels)
    start = time.perf_counter()
    scores = evaluator.run(retriever, show_progress=_progress(args, settings))  # type: ignore[arg-type]
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
        progress = _progress(args, settings)
        build_index(settings.corpus, settings.index_dir, embedder, settings.build_config(), show_progress=progress,
                    finalize=refit(embedder, settings, show_progress=progress))
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help (unless it names its own), examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default in (None, argparse.SUPPRESS) or not action.option_strings:
            return text
        if action.nargs == 0:  # a flag
            return f"{text} (default: {'on' if action.default else 'off'})"
        return f"{text} (default: %(default)s)"


def _effective() -> Settings:
    """The settings a command would run with; --help must work even when the environment holds a bad value."""
    try:
        return Settings()
    except ValueError:
        return Settings.model_construct()


def _from(settings: Settings, name: str, note: str = "") -> str:
    """'(default: <value>; setting <name>, env ...)': what an option's default is now and where it comes from."""
    value = getattr(settings, name)
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "on" if value else "off"
    return f"(default: {value}{note}; setting {name}, env CHIMED_RAG_{name.upper()})"


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def _version() -> str:
    try:
        return version("chimed-rag")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    from indexer.dense_index import FAISS_TYPES
    from indexer.embedding import EMBEDDING_BACKENDS
    from rag.pipeline import GENERATORS
    from rag.retrievers import MODES

    s = _effective()
    p = argparse.ArgumentParser(prog="chimed-rag", description=DESCRIPTION, formatter_class=_HelpFormatter,
                                epilog=_examples("chimed-rag index build --corpus corpus/docs",
                                                 "chimed-rag ask '高血压要注意什么？'",
                                                 "chimed-rag serve --port 8000",
                                                 "chimed-rag COMMAND --help   (options of one command)"))
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, help: str, *examples: str, progress: bool = False) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = group.add_parser(
            name, help=help, description=help, epilog=_examples(*examples), formatter_class=_HelpFormatter)
        if progress:
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
            sp.add_argument("--progress", action="store_true",
                            help="progress bars even when stderr is not a terminal "
                                 f"{_from(s, 'progress', ' = only on a terminal' if s.progress == 'auto' else '')}")
        return sp

    def index_option(sp: argparse.ArgumentParser, flag: str = "--index") -> None:
        sp.add_argument(flag, dest="index_dir", type=Path, metavar="DIR",
                        help=f"index directory {_from(s, 'index_dir')}")

    no_calibrate_help = "publish without refitting abstention (the server then warns and does not abstain)"
    index_parser = command(sub, "index", "build, update or inspect an index",
                           "chimed-rag index build --corpus corpus/docs --out indexes/default",
                           "chimed-rag index info indexes/default")
    index = index_parser.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = command(index, "build", "build an index from a corpus (an unchanged index is updated in place)",
                    "chimed-rag index build --corpus corpus/docs my_docs.jsonl --out indexes/default",
                    "chimed-rag index build --faiss-type hnsw --embedding-backend onnxruntime-int8", progress=True)
    build.add_argument("--corpus", nargs="+", type=Path, metavar="PATH",
                       help=f"files or folders: JSONL, Markdown/TXT, PDF, DOCX, HTML, XLSX/CSV {_from(s, 'corpus')}")
    build.add_argument("--out", dest="index_dir", type=Path, metavar="DIR",
                       help=f"index directory {_from(s, 'index_dir')}")
    build.add_argument("--faiss-type", dest="faiss_type", choices=FAISS_TYPES,
                       help=f"FAISS index type of the dense store {_from(s, 'faiss_type')}")
    build.add_argument("--embedding-model", dest="embedding_model", metavar="MODEL",
                       help=f"sentence-transformers hub id or local folder {_from(s, 'embedding_model')}")
    build.add_argument("--embedding-backend", dest="embedding_backend", choices=EMBEDDING_BACKENDS,
                       help=f"how the embedding model runs {_from(s, 'embedding_backend')}")
    build.add_argument("--skip-empty", action="store_true", help="skip records with empty text (warn, not fail)")
    build.add_argument("--no-calibrate", action="store_true", help=no_calibrate_help)
    build.set_defaults(func=cmd_index_build)
    add = command(index, "add", "add new or changed documents (only those are chunked and embedded)",
                  "chimed-rag index add --index indexes/default new_guideline.pdf more_docs/", progress=True)
    index_option(add)
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                     help="files or folders (any format index build reads)")
    add.add_argument("--no-calibrate", action="store_true", help=no_calibrate_help)
    add.set_defaults(func=cmd_index_add)
    delete = command(index, "delete", "delete documents by id",
                     "chimed-rag index delete --index indexes/default --doc-id htn dm")
    index_option(delete)
    delete.add_argument("--doc-id", dest="doc_ids", nargs="+", required=True, metavar="ID",
                        help="ids of the documents to delete (required)")
    delete.add_argument("--no-calibrate", action="store_true", help=no_calibrate_help)
    delete.set_defaults(func=cmd_index_delete)
    info = command(index, "info", "print an index manifest (JSON)", "chimed-rag index info indexes/default")
    info.add_argument("dir", type=Path, help="index directory")
    info.set_defaults(func=cmd_index_info)
    verify = command(index, "verify", "check every file's SHA-256 and size and the stores' consistency",
                     "chimed-rag index verify indexes/default")
    verify.add_argument("dir", type=Path, help="index directory")
    verify.set_defaults(func=cmd_index_verify)

    def retrieval_args(sp: argparse.ArgumentParser) -> None:
        index_option(sp)
        sp.add_argument("--mode", choices=MODES, help=f"retrieval mode {_from(s, 'default_mode')}")
        sp.add_argument("--top-k", dest="top_k", type=int, metavar="K",
                        help=f"passages to retrieve {_from(s, 'default_top_k')}")

    search = command(sub, "search", "retrieve passages for a query",
                     "chimed-rag search '血压高少吃盐' --mode bm25 --top-k 3")
    search.add_argument("query", help="the query text")
    retrieval_args(search)
    search.set_defaults(func=cmd_search)

    ask = command(sub, "ask", "answer a question with citations",
                  "chimed-rag ask '感冒要吃抗生素吗' --json", "chimed-rag ask '胸口疼怎么办' --strict --trace")
    ask.add_argument("question", help="the question")
    retrieval_args(ask)
    ask.add_argument("--generator", choices=list(GENERATORS), help=f"answer generator {_from(s, 'generator')}")
    ask.add_argument("--json", action="store_true", help="print the /v1/ask JSON object instead of text")
    ask.add_argument("--strict", action="store_true",
                     help=f"drop sentences the references do not support {_from(s, 'strict')}")
    ask.add_argument("--trace", action="store_true", help="also print the audit trace (stderr, JSON)")
    ask.set_defaults(func=cmd_ask)

    ev = command(sub, "eval", "evaluate retrieval",
                 "chimed-rag eval retrieval --index IDX --queries queries.jsonl --qrels qrels.tsv")
    evs = ev.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    retr = command(evs, "retrieval", "nDCG@10, Recall@10/100, MRR@10 on queries + qrels (BEIR layout)",
                   "chimed-rag eval retrieval --index .cache/idx --queries dev/queries.jsonl --qrels dev/qrels.tsv "
                   "--mode bm25 --limit 100 --json", progress=True)
    retr.add_argument("--index", required=True, type=Path, metavar="DIR", help="index directory (required)")
    retr.add_argument("--queries", required=True, type=Path, metavar="JSONL",
                      help='queries, one {"id": ..., "text" or "question": ...} per line (required)')
    retr.add_argument("--qrels", required=True, type=Path, metavar="TSV",
                      help="query-id<TAB>corpus-id<TAB>score, with or without a header line (required)")
    retr.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval mode")
    retr.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N queries (default: all)")
    retr.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    retr.set_defaults(func=cmd_eval_retrieval)

    root = Path(__file__).resolve().parent.parent
    cal = command(sub, "calibrate", "fit the abstention thresholds on in- and out-of-corpus questions",
                  "chimed-rag calibrate --index indexes/default",
                  "chimed-rag calibrate --in-corpus my_questions.jsonl --target 0.03 --out /tmp/cal", progress=True)
    index_option(cal)
    cal.add_argument("--in-corpus", dest="in_corpus", nargs="+", type=Path, metavar="JSONL",
                     default=sorted((root / "tests/data/coverage").glob("*.jsonl")),
                     help='answerable questions, one {"question" or "text": ...} per line '
                          "(default: tests/data/coverage/*.jsonl)")
    cal.add_argument("--out-of-corpus", dest="out_of_corpus", type=Path, metavar="JSONL",
                     default=root / "tests/data/out_of_corpus.jsonl",
                     help="questions the corpus cannot answer, same format (default: tests/data/out_of_corpus.jsonl)")
    cal.add_argument("--no-titles", dest="titles", action="store_false",
                     help="do not add corpus-title questions (default: added)")
    cal.add_argument("--target", type=float, default=0.03, help="highest false-abstention rate allowed")
    cal.add_argument("--out", type=Path, metavar="DIR",
                     help="folder for calibration.json (default: publish a new generation of the index)")
    cal.set_defaults(func=cmd_calibrate)

    data = root / "tests" / "data"
    triage_parser = command(sub, "triage", "measure the red-flag triage (rules + learned backstop)",
                            "chimed-rag triage eval --rules-only")
    triage = triage_parser.add_subparsers(dest="triage_command", required=True, metavar="ACTION")
    teval = command(triage, "eval", "recall and false-alarm rate of rules (+ model) on labelled cases",
                    "chimed-rag triage eval --cases my_cases.jsonl --show-missed")
    teval.add_argument("--cases", nargs="+", type=Path, metavar="JSONL", default=[data / "triage_blind_b.jsonl"],
                       help="labelled cases (default: tests/data/triage_blind_b.jsonl)")
    teval.add_argument("--model", type=Path, default=TRIAGE_MODEL, help="model file (default: the shipped one)")
    teval.add_argument("--rules-only", action="store_true", help="rules alone, without the learned model")
    teval.add_argument("--show-missed", action="store_true", help="list the emergencies not rated emergency")
    teval.set_defaults(func=cmd_triage_eval)

    serve = command(sub, "serve", "serve the HTTP API and web page over the live index (hot-reloads new generations)",
                    "chimed-rag serve --index indexes/default --host 0.0.0.0 --port 8000",
                    "chimed-rag serve --generator openai   (an OpenAI-compatible server at llm_api_base)",
                    progress=True)
    index_option(serve)
    serve.add_argument("--host", help=f"address to listen on {_from(s, 'host')}")
    serve.add_argument("--port", type=int, help=f"port to listen on {_from(s, 'port')}")
    serve.add_argument("--generator", choices=list(GENERATORS), help=f"answer generator {_from(s, 'generator')}")
    serve.add_argument("--build", action="store_true", help="build and calibrate the index first if it is missing")
    serve.add_argument("--no-build", action="store_true",
                       help="fail when the index is missing (default behaviour without --build)")
    serve.add_argument("--workers", type=int, help=f"worker processes {_from(s, 'workers')}")
    serve.set_defaults(func=cmd_serve)
    _add_train_parser(sub)
    return p


def cmd_train_embedder(args: argparse.Namespace) -> int:
    from indexer.train_embedder import TrainConfig, train

    _check_device(args.device)
    config = TrainConfig(data=args.data, out=args.out, seed=args.seed, device=args.device, max_pairs=args.max_pairs,
                         epochs=args.epochs, lora_r=args.lora_r, batch_size=args.batch_size,
                         learning_rate=args.learning_rate,
                         max_seq_length=args.max_seq_length, hard_negatives=not args.no_hard_negatives,
                         labelled_triplets=args.labelled_triplets)
    print(json.dumps(train(config), indent=2, ensure_ascii=False))
    return 0


def cmd_train_reranker(args: argparse.Namespace) -> int:
    from indexer.train_reranker import RerankTrainConfig, train

    _check_device(args.device)
    config = RerankTrainConfig(data=args.data, out=args.out, seed=args.seed, device=args.device,
                               graded_pairs=args.graded_pairs, answer_pairs=args.answer_pairs, epochs=args.epochs,
                               lora_r=args.lora_r, batch_size=args.batch_size, learning_rate=args.learning_rate,
                               max_length=args.max_length)
    print(json.dumps(train(config), indent=2, ensure_ascii=False))
    return 0


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is available to torch")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _add_retrieval_training_args(parser: argparse.ArgumentParser) -> None:
    """What `train embedder` and `train reranker` share: the data folder, the output, the seed, the device."""
    parser.add_argument("--data", required=True, type=Path, metavar="DIR",
                        help="training data folder with retrieval/*.jsonl (required)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (required)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, mining and training")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")


def _add_train_parser(sub: Any) -> None:
    def command(group: Any, name: str, help: str, *examples: str) -> argparse.ArgumentParser:
        return group.add_parser(name, help=help, description=help, epilog=_examples(*examples),
                                formatter_class=_HelpFormatter)

    train_parser = command(sub, "train", "train models (offline; ship the small artefact, never the data)",
                           "chimed-rag train embedder --data ../shared/data/train --out /tmp/e5-med")
    train = train_parser.add_subparsers(dest="train_command", required=True, metavar="MODEL")
    emb = command(train, "embedder", "LoRA-tune the e5 embedder on query/passage pairs (writes DIR/adapter)",
                  "chimed-rag train embedder --data ../shared/data/train --out /tmp/e5-med --max-pairs 4000",
                  "chimed-rag train embedder --data ../shared/data/train --out /tmp/e5-med --device cuda --epochs 2")
    _add_retrieval_training_args(emb)
    emb.add_argument("--max-pairs", dest="max_pairs", type=_positive_int, help="total pairs (default: 4,000)")
    emb.add_argument("--epochs", type=float, default=1.0, help="passes over the pairs")
    emb.add_argument("--lora-r", dest="lora_r", type=_positive_int, default=8, help="LoRA rank")
    emb.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=32,
                     help="pairs per step (each pair's passage is a negative for the others)")
    emb.add_argument("--learning-rate", dest="learning_rate", type=float, default=3e-4, help="AdamW learning rate")
    emb.add_argument("--max-seq-length", dest="max_seq_length", type=_positive_int, default=64,
                     help="tokens per text (the training texts are short; 64 keeps a CPU run short)")
    emb.add_argument("--no-hard-negatives", action="store_true",
                     help="in-batch negatives only (default: one mined hard negative per pair)")
    emb.add_argument("--labelled-triplets", dest="labelled_triplets", type=int, default=0, metavar="N",
                     help="add N (query, relevant, annotated non-relevant) triplets from the graded sources "
                          "(kuake-qtr-train, cmedir), and batch each source apart (default: 0 = none)")
    emb.set_defaults(func=cmd_train_embedder)
    rer = command(train, "reranker", "train the cross-encoder rerank stage from the e5 weights (writes DIR/adapter)",
                  "chimed-rag train reranker --data ../shared/data/train --out /tmp/e5-rerank",
                  "chimed-rag train reranker --data ../shared/data/train --out /tmp/e5-rerank --device cuda")
    _add_retrieval_training_args(rer)
    rer.add_argument("--graded-pairs", dest="graded_pairs", type=_positive_int, default=6000,
                     help="annotator-judged pairs from kuake-qtr-train and cmedir, split evenly")
    rer.add_argument("--answer-pairs", dest="answer_pairs", type=_positive_int, default=3000,
                     help="query -> answer pairs of the other sources (each with another query's answer as a "
                          "negative)")
    rer.add_argument("--epochs", type=float, default=1.0, help="passes over the pairs")
    rer.add_argument("--lora-r", dest="lora_r", type=_positive_int, default=8, help="LoRA rank")
    rer.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=32, help="pairs per step")
    rer.add_argument("--learning-rate", dest="learning_rate", type=float, default=2e-4, help="AdamW learning rate")
    rer.add_argument("--max-length", dest="max_length", type=_positive_int, default=128,
                     help="query + passage tokens")
    rer.set_defaults(func=cmd_train_reranker)
    data = Path(__file__).resolve().parents[1] / "tests" / "data"
    tri = command(train, "triage", "fine-tune the triage backstop on labelled cases ({\"text\", \"level\"} JSONL): "
                  "writes DIR/adapter and DIR/triage_model.json",
                  "chimed-rag train triage --out /tmp/triage   (the shipped training sets, 5-fold CV, ~30 min CPU)",
                  "chimed-rag train triage --cases my_cases.jsonl --out /tmp/triage --device cuda")
    tri.add_argument("--cases", nargs="+", type=Path, metavar="JSONL", default=[data / n for n in TRIAGE_TRAINING],
                     help="labelled cases (default: the shipped training sets in tests/data)")
    tri.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (required)")
    tri.add_argument("--seed", type=int, default=0, help="seed of the folds and the training")
    tri.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train")
    tri.add_argument("--epochs", type=_positive_int, default=3, help="passes over the cases")
    tri.add_argument("--folds", type=_positive_int, default=5,
                     help="cross-validation folds the thresholds are chosen on (at least 2)")
    tri.add_argument("--lora-r", dest="lora_r", type=_positive_int, default=8, help="LoRA rank")
    tri.set_defaults(func=cmd_train_triage)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("CHIMED_RAG_LOG_LEVEL", "WARNING"))
    # transformers' "Loading weights n/n" bar on every model load is noise here; our own bars say what runs.
    # (Read when transformers is first imported; uvicorn workers inherit it.)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
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
