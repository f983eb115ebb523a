"""Generated edge-case documents (reportlab with the STSong-Light CID font, python-docx, openpyxl).

Every file is built in the test's own temporary folder; nothing here is a copy of a real document.
"""

from __future__ import annotations

import io
from pathlib import Path

import docx
import openpyxl
import pypdf
import pytest
from PIL import Image
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from tests.conftest import ROOT

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
HEADER = "华东示范医院内部资料 仅供参考"
FOOTER = "糖尿病随访手册（示范版）"
SHARED_DOCUMENTS = (ROOT.parent / "shared" / "documents").resolve()

# One fact per page, each sentence drawn over two lines, so that the loader must join them.
FACTS = {
    1: ("二甲双胍是二型糖尿病患者的首选口服降糖药物，", "若无禁忌证应一直保留在治疗方案中。"),
    2: ("糖化血红蛋白每三个月检测一次，", "控制目标一般为小于百分之七。"),
    3: ("雷公藤多苷片的示范剂量为每公斤体重每日一毫克，", "分三次饭后服用。"),
    4: ("下表列出常用胰岛素的起效时间，", "表格跨越第四页和第五页。"),
    5: ("表格之后是足部护理的建议，", "每天用温水洗脚并检查有无破损。"),
    6: ("低血糖时应立即口服十五克葡萄糖，", "十五分钟后复测血糖。"),
}
TABLE_HEADER = ("胰岛素", "起效时间", "持续时间")
TABLE_ROWS = [(f"示范胰岛素{n}号", f"{n * 5}分钟", f"{n + 10}小时") for n in range(1, 13)]


def shared_document(name: str) -> Path:
    """A real document from ../shared/documents, read in place (never copied: see its README's licences)."""
    path = SHARED_DOCUMENTS / name
    if not path.is_file():
        pytest.fail(f"real test document missing: {path} (the ingestion tests need ../shared/documents)")
    return path


def _page_furniture(c: canvas.Canvas, page: int) -> None:
    c.setFont(FONT, 9)
    c.drawString(72, 800, HEADER)
    c.drawString(72, 40, FOOTER)
    c.drawString(300, 25, f"— {page} —")


def _grid(c: canvas.Canvas, rows: list[tuple[str, ...]], top: float) -> float:
    xs, height = [72, 220, 350, 480], 22
    ys = [top - i * height for i in range(len(rows) + 1)]
    c.grid(xs, ys)
    c.setFont(FONT, 10)
    for i, row in enumerate(rows):
        for x, cell in zip(xs, row):
            c.drawString(x + 4, ys[i] - 15, cell)
    return ys[-1]


def running_pdf(path: Path) -> Path:
    """Six pages with a running header and footer, page numbers, broken lines, a table over pages 4-5."""
    c = canvas.Canvas(str(path))
    c.setTitle("糖尿病随访手册")
    for page in range(1, 7):
        _page_furniture(c, page)
        c.setFont(FONT, 12)
        first, second = FACTS[page]
        top = 740
        if page == 5:  # the table goes on at the top of the page, under the running head
            top = _grid(c, TABLE_ROWS[8:], 770) - 30
            c.setFont(FONT, 12)
            c.drawString(72, top + 12, "注：示范数据，仅用于测试。")
            top -= 20
        c.drawString(72, top, first)
        c.drawString(72, top - 18, second)
        if page == 4:
            c.drawString(72, 700, "表 1 常用胰岛素")
            _grid(c, [TABLE_HEADER, *TABLE_ROWS[:8]], 680)
        c.showPage()
    c.save()
    return path


def two_column_pdf(path: Path) -> Path:
    """One page in two columns: the left column's sentence must come before the right one's."""
    c = canvas.Canvas(str(path))
    c.setFont(FONT, 11)
    left = ["左栏第一句讲的是痛风急性发作的", "处理原则，应当卧床休息并抬高患肢。"]
    right = ["右栏第一句讲的是痛风缓解期的", "饮食管理，应当限制高嘌呤食物。"]
    for x, column in ((60, left), (320, right)):  # column after column, as layout programs write them
        for n, line in enumerate(column):
            c.drawString(x, 760 - n * 16, line)
    c.showPage()
    c.save()
    return path


def with_image_page(path: Path) -> Path:
    """Three pages; page 2 is one picture and no text (a scan)."""
    c = canvas.Canvas(str(path))
    picture = Image.new("L", (400, 300), 255)
    for x in range(0, 400, 7):
        for y in range(40, 260):
            picture.putpixel((x, y), 0)
    for page in (1, 2, 3):
        if page == 2:
            c.drawImage(ImageReader(picture), 72, 300, 400, 300)
        else:
            c.setFont(FONT, 12)
            c.drawString(72, 740, f"第{page}页正文：扫描页的前后都有文字。")
        c.showPage()
    c.save()
    return path


def image_only_pdf(path: Path) -> Path:
    c = canvas.Canvas(str(path))
    c.rect(100, 100, 300, 300, fill=1)
    c.showPage()
    c.save()
    return path


def many_pages_pdf(path: Path, pages: int) -> Path:
    c = canvas.Canvas(str(path))
    for page in range(1, pages + 1):
        _page_furniture(c, page)
        c.setFont(FONT, 11)
        for line in range(30):
            c.drawString(60, 760 - line * 22, f"第{page}页第{line + 1}行：高血压患者应当限制钠盐摄入并规律监测血压，")
        c.showPage()
    c.save()
    return path


def encrypted_pdf(path: Path) -> Path:
    source = io.BytesIO()
    c = canvas.Canvas(source)
    c.setFont(FONT, 12)
    c.drawString(72, 740, "加密文件的正文。")
    c.showPage()
    c.save()
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(source.getvalue())))
    writer.encrypt(user_password="secret", owner_password="owner")
    with path.open("wb") as out:
        writer.write(out)
    return path


def sample_docx(path: Path) -> Path:
    """Headings two levels deep, a list, and a table with a merged cell."""
    d = docx.Document()
    d.core_properties.title = ""
    d.add_heading("痛风患者教育手册", level=1)
    d.add_paragraph("痛风是尿酸盐沉积引起的关节炎。")
    d.add_heading("急性发作的处理", level=2)
    d.add_paragraph("急性发作时首选秋水仙碱，越早使用效果越好。")
    d.add_paragraph("冰敷患处", style="List Bullet")
    d.add_paragraph("抬高患肢", style="List Bullet")
    d.add_heading("饮食建议", level=2)
    d.add_paragraph("每日饮水两千毫升以上，避免动物内脏和浓肉汤。")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([("食物", "嘌呤含量", "建议"), ("动物内脏", "高", "避免"), ("鸡蛋", "低", "可以吃")]):
        for col, text in enumerate(row):
            table.cell(r, col).text = text
    d.save(str(path))
    return path


def sample_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "随访记录"
    sheet.append(["患者编号", "\u200b空腹血糖 (mmol/L)", "用药"])
    sheet.append(["P-0001", 7.2, "二甲双胍"])
    sheet.append(["P-0002", 57.382000000000005, "格列美脲"])
    sheet.append([None, None, None])
    sheet.append(["P-0003", 6.1, "示范胰岛素7号"])
    other = book.create_sheet("说明")
    other.append(["字段", "含义"])
    other.append(["用药", "当前使用的降糖药"])
    book.save(str(path))
    return path
