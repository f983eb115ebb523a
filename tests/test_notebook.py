"""CI runs the experimentation notebook top to bottom (small dev subset) and fails on any error."""

from __future__ import annotations

import os
from typing import Any

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT, shared_data


def test_notebook_executes(corpus_index: Any, tmp_path: Any, monkeypatch: Any) -> None:
    shared = shared_data()
    env = {"CHIMED_RAG_INDEX_DIR": str(corpus_index.path), "NB_QUERIES": "20", "NB_DISTRACTORS": "60",
           "NB_SHARED_DATA": str(shared), "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    nb = nbformat.read(ROOT / "notebooks" / "experiment.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the bar chart, before and after the second embedding model
    text = "".join(o.get("text", "") for o in outputs)
    assert "高血压要吃什么药" in text and "《" in text  # condensed follow-up and cited passages shown
