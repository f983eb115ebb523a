"""The live index bundle: what a new generation rebuilds and what it shares with the one it replaces."""

from __future__ import annotations

from typing import Any

from rag.live import LiveIndex
from rag.pipeline import RAGPipeline, build_generator
from rag.settings import Settings


def test_a_new_generation_shares_the_triage_component(tiny_index: Any, embedder: Any) -> None:
    """The triage backstop has its own fine-tuned encoder and does not depend on the index: a reload (an upload,
    a delete, a rebuild) must not load that model again, nor hold two copies during the swap."""
    settings = Settings(index_dir=tiny_index.path)
    first = RAGPipeline(tiny_index, embedder, build_generator(settings, tiny_index), settings)
    live = LiveIndex(first, settings)
    result = live.reload(force=True)
    assert result.status == "reloaded"
    fresh = live.pipeline
    assert fresh is not first and fresh.index is not first.index  # the index bundle is new ...
    assert fresh.triage is first.triage and fresh.triage.model is not None  # ... the triage is the same object
    assert fresh.triage.assess("我爸突然说不出话 一边手脚没劲").level == "emergency"
