"""A quick run's report.html in a real browser (headless Chromium from file://, see
tests/browser.py): no errors, results before metadata, and a model's link opens its explorer
page. With PSAE_SCREENSHOT_DIR set, the top of the report is saved there as report.png."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from browser import open_page

MODELS = "rae,l1,psae"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-browser") / "run"
    res = subprocess.run([sys.executable, "-m", "psae", "reproduce", "--quick", "--models",
                          MODELS, "--out", str(out), "--quiet", "--device", "cpu"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def page(run_dir):
    with open_page((run_dir / "report.html").as_uri()) as page:
        yield page


def _top(page, selector: str) -> float:
    """Distance from the top of the document (not of the scrolled viewport)."""
    return page.eval_on_selector(selector, "e => e.getBoundingClientRect().top + window.scrollY")


def test_report_opens_without_errors_and_leads_with_results(page, run_dir):
    page.goto((run_dir / "report.html").as_uri())
    page.wait_for_load_state("load")
    assert page.locator("table.results").count() == 1  # one data set
    assert page.locator("figure.headline img").count() == 1
    # in the document and on screen: results first, the (collapsed) run metadata after
    follows = page.evaluate("document.querySelector('table.results').compareDocumentPosition("
                            "document.querySelector('#run')) & Node.DOCUMENT_POSITION_FOLLOWING")
    assert follows
    assert not page.locator("#run").is_visible()  # collapsed in <details>
    results_y = _top(page, "table.results")
    assert results_y < 2 * page.viewport_size["height"]  # within two screens of the top
    shot = os.environ.get("PSAE_SCREENSHOT_DIR")
    if shot:  # the top of the report, down to the end of the results table
        Path(shot).mkdir(parents=True, exist_ok=True)
        bottom = _top(page, "table.results") + page.locator("table.results").bounding_box()[
            "height"]
        page.screenshot(path=str(Path(shot) / "report.png"),
                        clip={"x": 0, "y": 0, "width": 1280, "height": bottom + 24},
                        full_page=True)
    page.click("summary:has-text('Run metadata')")
    assert page.locator("#run").is_visible() and _top(page, "#run") > results_y
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.errors == []


def test_a_models_link_opens_its_explorer_page(page, run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    m = results["datasets"]["digits"]["protocol"]["n_components"]
    page.goto((run_dir / "report.html").as_uri())
    link = page.locator("table.results a", has_text="PSAE")
    assert link.get_attribute("href") == "explore/digits__psae/index.html"
    link.click()
    page.wait_for_selector("body[data-ready='1']", state="attached")
    assert page.url.endswith("/explore/digits__psae/index.html")
    assert page.locator("#units tbody tr").count() == m
    page.go_back()
    page.wait_for_selector("table.results")
    # the filters figure links to the same data set's pages, one per model
    hrefs = page.eval_on_selector_all(
        "figure:has(img[alt='filters_digits']) a", "as => as.map(a => a.getAttribute('href'))")
    assert hrefs == [f"explore/digits__{k}/index.html" for k in MODELS.split(",")]
    assert page.errors == []


def test_figures_are_drawn_at_the_page_width_and_nothing_overflows(page, run_dir):
    """Fig. 2 (drawn 1,320 px wide) was shown at 640 px, its labels about 7 px high; a wide
    table overflowed a 1,400-px window."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto((run_dir / "report.html").as_uri())
    page.wait_for_load_state("load")
    assert page.eval_on_selector("figure.headline img", "i => i.getBoundingClientRect().width") \
        > 1000
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("[...document.querySelectorAll('table')].every("
                         "t => t.parentElement.classList.contains('table-wrap'))")
