"""CI runs the experimentation notebook top to bottom (small setting) and fails on any error."""

from __future__ import annotations

import base64
import os
from typing import Any

import nbformat
from nbclient import NotebookClient

from tests.conftest import CACHE, DEV_SETS, ROOT, shared_data


def test_notebook_executes(corpus_index: Any, tmp_path: Any, monkeypatch: Any) -> None:
    shared = shared_data()
    queries, distractors = 20, 150  # per set; the defaults outside CI are 200 and 3000
    env = {"CHIMED_RAG_INDEX_DIR": str(corpus_index.path), "NB_QUERIES": str(queries),
           "NB_DISTRACTORS": str(distractors),
           "NB_SHARED_DATA": str(shared), "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    monkeypatch.delenv("NB_OTHER_EMBEDDING", raising=False)
    nb = nbformat.read(ROOT / "notebooks" / "experiment.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    artefacts = CACHE / "notebook"  # to look at: the charts as CI drew them
    artefacts.mkdir(parents=True, exist_ok=True)
    for n, png in enumerate(images, start=1):
        (artefacts / f"chart-{n}.png").write_bytes(base64.b64decode(png))
    assert len(images) == 2  # nDCG@10 per set and mode; abstention score distributions
    text = "".join(o.get("text", "") for o in outputs)
    for name in DEV_SETS:
        assert f"{name}: {queries} queries" in text and f"+ {distractors} distractor documents" in text
    assert "abstention threshold 0." in text and "cross-validated: false abstention" in text
    assert "NB_OTHER_EMBEDDING not set: skipped" in text  # no identical bars of a model compared with itself
    assert "高血压要吃什么药" in text and "《" in text  # condensed follow-up and cited passages shown
