"""Opening a page in a real headless Chromium (Debian's chromium + chromium-driver, which .ci/run installs) through
selenium: what loaded, what the console said, which images are displayed, and a screenshot."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,1600"]


@dataclass
class Page:
    title: str
    errors: list[str]  # console messages of level SEVERE (failed loads, script errors)
    images: list[dict]  # src, complete, naturalWidth, naturalHeight, width shown
    links: list[str]  # every <a href> as the browser resolved it


def chromium():
    """A headless Chromium driver; skips when the browser is not installed, fails instead under
    EOTD_REQUIRE_BROWSER=1 (CI installs it and must run the test)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        message = "Chromium not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("EOTD_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def visit(driver, path: Path, screenshot: Path | None = None) -> Page:
    driver.get(Path(path).resolve().as_uri())
    images = driver.execute_script(
        "return [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete,"
        " naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight, width: i.width}))")
    links = driver.execute_script("return [...document.links].map(a => a.href)")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.set_window_size(1280, max(900, driver.execute_script("return document.body.scrollHeight")))
        driver.save_screenshot(str(screenshot))
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return Page(driver.title, errors, images, links)


def artifact(name: str) -> Path:
    """Where a test keeps a screenshot for people to look at: $EOTD_ARTIFACTS_DIR, else .cache/test-artifacts."""
    from eotd import paths

    folder = Path(os.environ.get("EOTD_ARTIFACTS_DIR") or paths.cache_dir("test-artifacts"))
    return folder / name


def check_report(report: Path, screenshot: str) -> Page:
    """report.html loads without a console error, shows every figure of its folder at a real size, and links to a
    stage page per rendered notebook, each of which loads without errors too. Keeps a screenshot."""
    from urllib.parse import unquote, urlparse

    folder = report.parent
    figures = sorted(folder.glob("fig_*.png"))
    stages = sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))
    driver = chromium()
    try:
        page = visit(driver, report, artifact(screenshot))
        assert page.errors == [], page.errors
        assert sorted(Path(i["src"]).name for i in page.images) == [f.name for f in figures] and figures
        for image in page.images:
            assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0, image
            assert image["width"] > 0, image  # laid out, not hidden
        pages = [Path(unquote(urlparse(link).path)) for link in page.links if link.endswith(".html")]
        assert sorted(p.stem for p in pages) == stages and stages
        for stage_page in pages:
            seen = visit(driver, stage_page)
            assert seen.errors == [] and seen.title == stage_page.stem, (stage_page, seen.errors, seen.title)
            assert all(i["complete"] and i["naturalWidth"] > 0 for i in seen.images), stage_page
        return page
    finally:
        driver.quit()


# JupyterLab 4 (tests/test_jupyterlab.py): a notebook opened, edited and run through the UI as a person would.
LAB_PROMPTS = "return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]" \
              ".map(e => e.textContent.trim())"


def lab_open(driver, url: str, timeout: float = 120):
    """Open a notebook's lab URL (…/lab/tree/NAME.ipynb?token=…); wait until its kernel is connected and idle and its
    first code cell's editor is drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    # the status bar says "| Idle" once the kernel is connected (the execution indicator can read idle before)
    WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: d.execute_script(
        "return document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\"idle\"]')"
        " && /\\|\\s*Idle\\b/.test(document.body.innerText)"
        " && document.querySelector('.jp-Notebook .jp-CodeCell .cm-content .cm-line')"))


def lab_cell_text(driver, index: int) -> str:
    """The source of the index-th code cell: its CodeMirror 6 editor's document (the way EditorView.findFromDOM
    reaches the view), else the lines the editor has drawn (CodeMirror may not draw lines out of view)."""
    return driver.execute_script("""
        const cell = document.querySelectorAll('.jp-Notebook .jp-CodeCell')[arguments[0]];
        const content = cell.querySelector('.cm-content');
        const view = content.cmView && (content.cmView.view || (content.cmView.rootView || {}).view);
        return view ? view.state.doc.toString()
                    : [...content.querySelectorAll('.cm-line')].map(l => l.textContent).join('\\n')""", index)


def lab_replace_line(driver, index: int, old: str, new: str, timeout: float = 30) -> str:
    """In the index-th code cell, click the line that reads `old`, select it with the keyboard (End, Shift+Home) and
    type `new` over it; returns the cell's text afterwards."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def clicked(d):  # found and clicked in one go: the notebook may redraw the cell (a stale element) in between
        cell = d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")[index]
        target = next((e for e in cell.find_elements(By.CSS_SELECTOR, ".cm-content .cm-line") if e.text == old), None)
        if target is None:
            return False
        target.click()
        return True

    WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        clicked)
    (ActionChains(driver).send_keys(Keys.END).key_down(Keys.SHIFT).send_keys(Keys.HOME).key_up(Keys.SHIFT)
     .send_keys(new).perform())
    return lab_cell_text(driver, index)


def lab_menu(driver, menu: str, item: str, timeout: float = 30) -> None:
    """Click `item` of the main menu bar's `menu` (e.g. "Run", "Run All Cells")."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.XPATH, f"//div[contains(@class, 'lm-MenuBar-itemLabel') and text()='{menu}']").click()
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.find_element(
        By.XPATH, f"//li[contains(@class, 'lm-Menu-item')][.//div[contains(@class, 'lm-Menu-itemLabel')"
                  f" and text()='{item}']]")).click()


def lab_wait_until_run(driver, timeout: float) -> list[str]:
    """After Run All Cells: wait until no cell is queued or running ([*]) and the notebook's kernel is idle; returns
    the code cells' prompts ("[3]:"; "[ ]:" for cells that never ran because one before them failed)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def finished(d):
        prompts = d.execute_script(LAB_PROMPTS)
        idle = d.execute_script("return document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status")
        return prompts if prompts and idle == "idle" and "[*]:" not in prompts and prompts[0] != "[ ]:" else None

    return WebDriverWait(driver, timeout, poll_frequency=1).until(finished)


def lab_outputs(driver) -> list[dict]:
    """Every output of the notebook in order: its code cell's index, mime type (as JupyterLab rendered it; none for a
    widget), classes, text, whether it holds a jupyter widget, and whether that draws a progress bar."""
    return driver.execute_script("""
        return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].flatMap((cell, index) =>
          [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
            cell: index, mime: o.dataset.mimeType || '', classes: o.className, text: o.innerText,
            widget: !!o.querySelector('.jupyter-widgets'),
            progress: !!o.querySelector('.jupyter-widgets:is(.widget-hprogress, .widget-vprogress) .progress-bar')
          })))""")


def lab_screenshot(driver, path: Path, max_height: int = 12000) -> None:
    """The whole notebook in one picture, from its top: the window made as tall as the notebook (up to max_height)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    path.parent.mkdir(parents=True, exist_ok=True)
    panel = "document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')"  # the notebook scrolls in here
    shown, hidden = driver.execute_script(
        f"const o = {panel}; return o ? [o.clientHeight, o.scrollHeight - o.clientHeight] : [0, 0]")
    if hidden > 0:
        driver.set_window_size(1280, min(max_height, driver.get_window_size()["height"] + hidden))
        try:  # JupyterLab lays itself out again on the next animation frames
            WebDriverWait(driver, 5, poll_frequency=0.2).until(
                lambda d: d.execute_script(f"return {panel}.clientHeight > arguments[0]", shown))
        except TimeoutException:
            pass
        driver.execute_script(f"{panel}.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
