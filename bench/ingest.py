"""PDF ingestion speed and memory: pages/s and peak RSS of parsing a generated N-page Chinese PDF.

    python -m bench.ingest                    # 200 pages, results in bench/results/ingest.json
    python -m bench.ingest --pages 20 --name ingest-smoke --no-save
    python -m bench.ingest --real ../shared/documents/guideline-hypertension-china-2010.pdf

The PDF (reportlab, STSong-Light CID font) has a running head and footer, a page number, 30 lines of
text a page and a ruled table every 10th page, so the header/footer pass and the table finder both run.
Parsing happens in a fresh process (spawn) so that its peak RSS is the parser's own, not this script's.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pypdf

from bench.common import RESULTS, machine_info

FONT = "STSong-Light"


def make_pdf(path: Path, pages: int) -> Path:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    c = canvas.Canvas(str(path))
    for page in range(1, pages + 1):
        c.setFont(FONT, 9)
        c.drawString(72, 800, "示范医院诊疗常规（基准测试用）")
        c.drawString(300, 25, f"— {page} —")
        c.setFont(FONT, 11)
        lines = 18 if page % 10 == 0 else 30
        for line in range(lines):
            c.drawString(60, 770 - line * 22, f"第{page}页第{line + 1}行：高血压患者应当限制钠盐摄入，规律监测血压并")
        if page % 10 == 0:
            c.drawString(60, 370, f"表 {page // 10} 常用降压药")
            xs, ys = [60, 200, 330, 460], [350 - i * 20 for i in range(8)]
            c.grid(xs, ys)
            for i in range(7):
                for x, cell in zip(xs, (f"药物{i}", f"{i * 5} mg", "每日一次")):
                    c.drawString(x + 4, ys[i] - 14, cell)
        c.showPage()
    c.save()
    return path


def _parse(path: str) -> dict[str, Any]:
    """In the child: parse and chunk, report time and the child's own peak RSS."""
    import psutil

    from indexer.chunking import Chunker
    from indexer.loaders import load_file

    before = psutil.Process().memory_info().rss  # after the parser's imports
    start = time.perf_counter()
    [(doc, _)] = load_file(Path(path), Path(path).parent)
    parsed = time.perf_counter() - start
    chunks = Chunker().chunk(doc)
    return {"parse_s": parsed, "chunk_s": time.perf_counter() - start - parsed, "chunks": len(chunks),
            "characters": len(doc.text), "tables": len({s.table for s in doc.layout if s.table}),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # the whole process's
            "rss_before_parse_mb": before / 2**20}


def measure(pdf: Path, pages: int) -> dict[str, Any]:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        measured = pool.submit(_parse, str(pdf)).result()
    return {"file": pdf.name, "pages": pages, "pdf_bytes": pdf.stat().st_size, **measured,
            "pages_per_s": pages / measured["parse_s"]}


def run(pages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        return measure(make_pdf(Path(folder) / f"bench-{pages}.pdf", pages), pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--name", default="ingest")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--real", nargs="*", type=Path, default=[], help="real PDFs to measure too (read in place)")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"machine": machine_info(), "pdf": run(args.pages)}
    result["real"] = [measure(path, len(pypdf.PdfReader(path).pages)) for path in args.real]
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2, ensure_ascii=False))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
