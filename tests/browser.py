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
