"""The web page at / in a real Chromium (Debian's chromium + chromedriver, driven by Selenium) against a real
`chimed-rag serve` process over a copy of the shipped-corpus index, with the admin API enabled.

Screenshots of each state go to .cache/screenshots/page/ (look at them after a change to the page)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import running_server
from tests.conftest import CACHE

CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = CACHE / "screenshots" / "page"
TOKEN = "page-admin-token"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")

if not CHROMEDRIVER.exists():
    message = "chromium + chromedriver missing: apt-get install -y chromium chromium-driver (.ci/run does it)"
    if os.environ.get("CHIMED_RAG_REQUIRE_SHARED") or os.environ.get("CI"):
        raise RuntimeError(message)  # CI must run the browser tests, never skip them
    pytest.fail(message, pytrace=False)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def base(corpus_index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("page")
    index = folder / "index"  # a copy: the upload/delete test publishes new generations
    shutil.copytree(corpus_index.path, index)
    # The shared corpus index has no abstention calibration, so nothing abstains here; without abstention an
    # upload skips the refit (minutes on this corpus) and the upload/delete test stays fast.
    env = {"CHIMED_RAG_ADMIN_TOKEN": TOKEN, "CHIMED_RAG_AUDIT_SECRET_FILE": str(folder / "audit.key"),
           "CHIMED_RAG_ABSTENTION": "false"}
    with running_server(index, folder / "server.log", env) as url:
        yield url


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chimed-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = "/usr/bin/chromium"
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    phone(browser)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def phone(browser: webdriver.Chrome, width: int = 390, height: int = 844) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})


def shot(browser: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def open_page(browser: webdriver.Chrome, base: str) -> None:
    browser.get(base + "/")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")


def ask(browser: webdriver.Chrome, question: str) -> Any:
    """Type the question and press Enter; returns the finished answer element."""
    before = len(browser.find_elements(By.CSS_SELECTOR, ".turn"))
    box = browser.find_element(By.ID, "question")
    box.send_keys(question, Keys.ENTER)
    WebDriverWait(browser, 120).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".turn")) > before)
    answer = browser.find_elements(By.CSS_SELECTOR, ".turn .answer")[-1]
    WebDriverWait(browser, 120).until(lambda _: answer.get_attribute("aria-busy") == "false")
    errors = answer.find_elements(By.CSS_SELECTOR, ".error")
    assert not errors, errors[0].text
    return answer


def no_horizontal_scroll(browser: webdriver.Chrome) -> bool:
    return bool(browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


def test_ask_streams_an_answer_and_each_marker_opens_its_passage(driver: webdriver.Chrome, base: str) -> None:
    open_page(driver, base)
    assert "仅供健康科普参考" in driver.find_element(By.ID, "disclaimer").text
    shot(driver, "01-empty")
    # Shift+Enter adds a line, Enter sends.
    box = driver.find_element(By.ID, "question")
    box.send_keys("感冒", Keys.SHIFT, Keys.ENTER, Keys.NULL)
    assert box.get_attribute("value") == "感冒\n" and not driver.find_elements(By.CSS_SELECTOR, ".turn")
    box.clear()
    answer = ask(driver, "感冒怎么处理？")
    text = answer.find_element(By.CSS_SELECTOR, ".text").text
    assert len(text) > 10 and "[1]" in text
    sources = answer.find_element(By.CSS_SELECTOR, ".sources").text
    assert "感冒" in sources
    assert "不能替代" in answer.find_element(By.CSS_SELECTOR, ".disclaimer").text
    shot(driver, "02-answer")
    marker = answer.find_element(By.CSS_SELECTOR, ".text .cite[data-marker='1']")
    marker.click()
    dialog = driver.find_element(By.ID, "passage")
    WebDriverWait(driver, 5).until(lambda _: dialog.is_displayed())
    assert driver.find_element(By.ID, "passage-title").text.startswith("[1]")
    highlight = dialog.find_element(By.CSS_SELECTOR, "mark")
    assert len(highlight.text) > 5 and highlight.text in dialog.find_element(By.ID, "passage-text").text
    shot(driver, "03-passage")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # keyboard closes the dialog
    WebDriverWait(driver, 5).until(lambda _: not dialog.is_displayed())
    assert no_horizontal_scroll(driver)


def test_a_follow_up_keeps_the_topic(driver: webdriver.Chrome, base: str) -> None:
    open_page(driver, base)
    first = ask(driver, "高血压是什么")
    assert "高血压" in first.find_element(By.CSS_SELECTOR, ".sources").text
    follow = ask(driver, "那要吃什么药")  # only the history sent with it says what "那" is
    assert "高血压" in follow.find_element(By.CSS_SELECTOR, ".sources").text
    shot(driver, "04-follow-up")
    driver.find_element(By.ID, "new-chat").click()
    assert not driver.find_elements(By.CSS_SELECTOR, ".turn")
    alone = ask(driver, "那要吃什么药")
    sources = alone.find_elements(By.CSS_SELECTOR, ".sources li")
    assert not sources or "高血压" not in sources[0].text


def test_emergency_shows_the_red_banner_above_the_answer(driver: webdriver.Chrome, base: str) -> None:
    open_page(driver, base)
    answer = ask(driver, "我爸突然说不出话，一边手脚没劲")
    banner = answer.find_element(By.CSS_SELECTOR, ".banner.emergency")
    assert "120" in banner.text and banner.get_attribute("role") == "alert"
    assert banner.find_element(By.CSS_SELECTOR, "a[href='tel:120']").is_displayed()
    text = answer.find_element(By.CSS_SELECTOR, ".text")
    assert banner.location["y"] < text.location["y"]
    color = banner.value_of_css_property("background-color")
    assert color.startswith("rgba(179, 18, 27") or color.startswith("rgb(179, 18, 27")
    assert no_horizontal_scroll(driver)
    shot(driver, "05-emergency")


def test_no_horizontal_scroll_on_a_phone_or_at_200_percent_zoom(driver: webdriver.Chrome, base: str) -> None:
    open_page(driver, base)
    ask(driver, "糖尿病患者饮食要注意什么")
    driver.find_element(By.CSS_SELECTOR, "#options summary").click()
    assert no_horizontal_scroll(driver)
    phone(driver, 320, 568)  # a 640 px window at 200 % zoom (WCAG reflow)
    try:
        assert no_horizontal_scroll(driver)
        shot(driver, "07-320px")
    finally:
        phone(driver)


def test_knowledge_base_upload_and_delete_with_the_admin_token(driver: webdriver.Chrome, base: str,
                                                              tmp_path: Path) -> None:
    open_page(driver, base)
    entry = driver.find_element(By.ID, "kb-open")
    WebDriverWait(driver, 10).until(lambda _: entry.is_displayed())  # the server has an admin token
    assert not driver.find_element(By.ID, "kb-body").is_displayed()  # nothing without the token
    entry.click()
    driver.find_element(By.ID, "kb-token").send_keys("wrong-token", Keys.ENTER)
    msg = driver.find_element(By.ID, "kb-msg")
    WebDriverWait(driver, 10).until(lambda _: "无法进入" in msg.text)
    assert not driver.find_element(By.ID, "kb-body").is_displayed()
    token = driver.find_element(By.ID, "kb-token")
    token.clear()
    token.send_keys(TOKEN, Keys.ENTER)
    info = driver.find_element(By.ID, "kb-info")
    WebDriverWait(driver, 10).until(lambda _: "第" in info.text)
    generation = info.text
    note = tmp_path / "痛风须知.md"
    note.write_text("# 痛风须知\n\n痛风急性发作时关节红肿热痛，常见于第一跖趾关节。"
                    "应减少高嘌呤食物摄入，限制饮酒，多饮水。\n", encoding="utf-8")
    driver.find_element(By.ID, "kb-file").send_keys(str(note))
    driver.find_element(By.CSS_SELECTOR, "#kb-upload button").click()
    WebDriverWait(driver, 120).until(lambda _: "已上传" in msg.text or "失败" in msg.text)
    assert "已上传" in msg.text, msg.text
    assert info.text != generation
    rows = driver.find_elements(By.CSS_SELECTOR, "#kb-docs tbody tr")
    added = [r for r in rows if "痛风须知" in r.text]
    assert added
    driver.execute_script("arguments[0].scrollIntoView()", added[0])
    shot(driver, "08-knowledge-base")
    added[0].find_element(By.CSS_SELECTOR, "button.danger").click()
    WebDriverWait(driver, 5).until(ec.alert_is_present())
    driver.switch_to.alert.accept()
    WebDriverWait(driver, 120).until(lambda _: "已删除" in msg.text or "失败" in msg.text)
    assert "已删除" in msg.text, msg.text
    assert not [r for r in driver.find_elements(By.CSS_SELECTOR, "#kb-docs tbody tr") if "痛风须知" in r.text]


@pytest.fixture(scope="module")
def plain(tiny_corpus: Path, embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server as `make serve` runs it: a calibrated index (abstention on) and no admin token."""
    from indexer.build import build_index
    from rag.calibration import refit
    from rag.settings import Settings

    folder = tmp_path_factory.mktemp("page-plain")
    build_index([tiny_corpus], folder / "index", embedder, finalize=refit(embedder, Settings()))
    env = {"CHIMED_RAG_AUDIT_SECRET_FILE": str(folder / "audit.key")}
    with running_server(folder / "index", folder / "server.log", env) as url:
        yield url


def test_an_unanswerable_question_shows_the_abstention_and_what_to_do(driver: webdriver.Chrome,
                                                                      plain: str) -> None:
    open_page(driver, plain)
    # Out of scope for a medical service and near nothing of the five-document corpus.
    answer = ask(driver, "帮我写一首关于春天的诗")  # measured: probability 0.016, threshold 0.089
    note = answer.find_element(By.CSS_SELECTOR, ".abstain")
    assert note.get_attribute("role") == "note"
    assert "不在医学健康范围内" in note.text and "咨询医生" in note.text
    assert not answer.find_elements(By.CSS_SELECTOR, ".text .cite")  # no answer pretending to be grounded
    assert "不能替代" in answer.find_element(By.CSS_SELECTOR, ".disclaimer").text
    assert no_horizontal_scroll(driver)
    shot(driver, "09-abstention")


def test_no_knowledge_base_entry_without_an_admin_token(driver: webdriver.Chrome, plain: str) -> None:
    open_page(driver, plain)
    ask(driver, "感冒怎么处理？")  # the page is up and answering before the entry is judged absent
    assert not driver.find_element(By.ID, "kb-open").is_displayed()
    assert not driver.find_element(By.ID, "kb-body").is_displayed()
    assert driver.execute_script("return document.getElementById('kb-open').hidden") is True
