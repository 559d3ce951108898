"""The feature explorer in a real browser: headless Chromium opens the page from file:// and
clicks, types and navigates through it (see tests/browser.py for the setup)."""

import os
from pathlib import Path

import numpy as np
import pytest
from browser import open_page, require
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from psae import Normalizer, SparseAutoencoder
from psae.explore import unit_stats, write_explorer

M = 40
TOP_N = 16


@pytest.fixture(scope="module")
def digits_page(tmp_path_factory):
    """A model trained on the digits, its explorer page, and the numbers behind it."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    nz = Normalizer().fit(Xtr)
    model = SparseAutoencoder(n_components=M, epochs=20, random_state=0, device="cpu")
    model.fit(nz.transform(Xtr).astype(np.float32))
    H = model.transform(nz.transform(Xte).astype(np.float32))
    atoms = model.components_
    path = write_explorer(
        tmp_path_factory.mktemp("explorer"),
        H,
        atoms,
        Xte,
        y=yte,
        image_shape=(8, 8),
        title="digits",
        meta={"model": f"SparseAutoencoder({M})", "data": "digits test split"},
        top_n=TOP_N,
    )
    return path, unit_stats(H, atoms, yte)


@pytest.fixture(scope="module")
def browser():
    with open_page() as page:
        yield page


def load(page, path: Path, hash_: str = ""):
    """Open the page afresh and wait until its script has drawn it."""
    page.errors.clear()
    page.goto("about:blank")
    page.goto(path.as_uri() + hash_)
    page.wait_for_selector("body[data-ready='1']", state="attached")
    return page


def shown_units(page) -> list[int]:
    return [
        int(u)
        for u in page.eval_on_selector_all(
            "#units tbody tr[data-unit]:not([hidden])", "rs => rs.map(r => r.dataset.unit)"
        )
    ]


def card_unit(page) -> int | None:
    if not page.is_visible("#card-wrap"):
        return None
    return int(page.inner_text("#card .unit-index"))


def test_browser_is_installed():
    require()  # fails, with the install command, where Chromium or Playwright is missing


def test_table_has_one_row_per_unit(browser, digits_page):
    page = load(browser, digits_page[0])
    assert sorted(shown_units(page)) == list(range(M))
    assert page.locator("#units tbody tr").count() == M
    assert page.locator("#ov-l0 svg rect").count() > 0
    shot = os.environ.get("PSAE_SCREENSHOT_DIR")
    if shot:
        Path(shot).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shot) / "explorer.png"), full_page=False)
    assert page.errors == []


@pytest.mark.parametrize(
    "key, stat", [("freq", "frequency"), ("contrib", "contribution"), ("sel", "selectivity")]
)
def test_header_click_sorts_desc_then_asc(browser, digits_page, key, stat):
    page = load(browser, digits_page[0])
    values = digits_page[1][stat]
    finite = values[np.isfinite(values)]
    page.click(f"th[data-key={key}]")
    assert values[shown_units(page)[0]] == pytest.approx(finite.max(), rel=1e-3)
    assert page.get_attribute(f"th[data-key={key}]", "aria-sort") == "descending"
    page.click(f"th[data-key={key}]")
    assert values[shown_units(page)[0]] == pytest.approx(finite.min(), rel=1e-3)
    assert page.get_attribute(f"th[data-key={key}]", "aria-sort") == "ascending"
    assert sorted(shown_units(page)) == list(range(M))
    assert page.errors == []


def test_row_click_opens_the_units_card(browser, digits_page):
    path, st = digits_page
    page = load(browser, path)
    j = int(np.argmax(st["count"]))
    page.click(f"tr[data-unit='{j}']")
    assert card_unit(page) == j
    assert page.locator("#card .thumb").count() == min(TOP_N, st["count"][j])
    assert page.locator("#card .thumb .sprite").count() == min(TOP_N, st["count"][j])
    assert page.locator("#card .sprite.atom").count() == 1
    assert page.locator("#card svg").count() >= 2  # activation histogram and class mix
    assert page.evaluate("location.hash") == f"#unit-{j}"
    shot = os.environ.get("PSAE_SCREENSHOT_DIR")
    if shot:
        page.screenshot(path=str(Path(shot) / "explorer_card.png"), full_page=False)
    page.click("#card button[data-go=close]")
    assert card_unit(page) is None
    assert page.errors == []


def test_keyboard_moves_opens_steps_and_closes(browser, digits_page):
    page = load(browser, digits_page[0])
    page.click("th[data-key=freq]")  # navigation follows the sorted order
    order = shown_units(page)
    selected = lambda: int(page.get_attribute("tr.selected", "data-unit"))  # noqa: E731
    page.keyboard.press("ArrowDown")
    assert selected() == order[0]
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("k")
    assert selected() == order[1]
    page.keyboard.press("Enter")
    assert card_unit(page) == order[1]
    page.keyboard.press("ArrowRight")
    assert card_unit(page) == order[2]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert card_unit(page) == order[0]
    page.keyboard.press("Escape")
    assert card_unit(page) is None
    assert page.errors == []


def test_filter_hides_rows_and_keyboard_skips_them(browser, digits_page):
    page = load(browser, digits_page[0])
    page.fill("#f-query", "3-5, 9")
    assert shown_units(page) == [3, 4, 5, 9]
    assert "4 of 40" in page.inner_text("#f-count")
    page.click("body")
    for _ in range(4):
        page.keyboard.press("ArrowDown")
    assert page.get_attribute("tr.selected", "data-unit") == "9"
    page.fill("#f-query", "")
    assert len(shown_units(page)) == M
    # a range written backwards, or open at one end, matched nothing
    for query, want in (("5-3", [3, 4, 5]), (f"{M - 2}-", [M - 2, M - 1]), ("-1", [0, 1])):
        page.fill("#f-query", query)
        assert shown_units(page) == want, query
    assert page.errors == []


def test_filter_by_class_on_digit_data(browser, digits_page):
    """Digit classes are numbers too: "class 3" filters by class, "3" and "unit 3" by unit."""
    page = load(browser, digits_page[0])
    preferred = digits_page[1]["preferred_class"]
    want = [j for j in range(M) if preferred[j] == 3]
    assert want, "no unit prefers class 3 in this fit"
    for query in ("class 3", "Class: 3"):
        page.fill("#f-query", query)
        assert shown_units(page) == want, query
    for query in ("3", "unit 3", "units 3"):
        page.fill("#f-query", query)
        assert shown_units(page) == [3], query
    assert page.errors == []


def test_hash_opens_a_unit(browser, digits_page):
    page = load(browser, digits_page[0], "#unit-5")
    assert card_unit(page) == 5
    page.evaluate("location.hash = '#unit-7'")
    page.wait_for_function("document.querySelector('#card').dataset.unit === '7'")
    assert card_unit(page) == 7
    assert page.get_attribute("tr.selected", "data-unit") == "7"
    assert page.errors == []


def _edge_cases():
    rng = np.random.default_rng(0)
    N = 30
    img = rng.integers(0, 17, (N, 16)).astype(float)
    codes = np.abs(rng.standard_normal((N, 6))) * (rng.random((N, 6)) < 0.3)
    y = rng.integers(0, 3, N)
    series = rng.standard_normal((N, 300))
    return {
        "no labels": (codes, rng.standard_normal((6, 16)), img, {"image_shape": (4, 4)}),
        "non-image": (codes, rng.standard_normal((6, 300)), series, {"y": y}),
        "short non-image": (codes, rng.standard_normal((6, 16)), img, {}),
        "all-zero codes": (
            np.zeros((N, 6)),
            rng.standard_normal((6, 16)),
            img,
            {"y": y, "image_shape": (4, 4)},
        ),
        "all dead, non-image": (np.full((N, 6), 1e-3), np.zeros((6, 300)), series, {}),
        "one unit": (
            codes[:, :1],
            rng.standard_normal((1, 16)),
            img,
            {"y": y, "image_shape": (4, 4)},
        ),
        "colour images": (
            codes,
            rng.standard_normal((6, 12)),
            rng.random((N, 12)),
            {"y": y, "image_shape": (2, 2, 3), "classes": ["a", "b", "<c>"]},
        ),
    }


@pytest.mark.parametrize("case", list(_edge_cases()))
def test_edge_cases_render_without_errors(browser, tmp_path, case):
    H, atoms, X, kwargs = _edge_cases()[case]
    page = load(browser, write_explorer(tmp_path, H, atoms, X, **kwargs))
    m = H.shape[1]
    assert sorted(shown_units(page)) == list(range(m))
    for key in page.eval_on_selector_all("th[data-key]", "ths => ths.map(t => t.dataset.key)"):
        page.click(f"th[data-key={key}]")
    page.click("tr[data-unit='0']")
    assert card_unit(page) == 0
    fires = (np.abs(H[:, 0]) > 0.01).any()
    if "y" not in kwargs:
        assert page.locator("th[data-key=sel]").count() == 0
        assert "no labels" in page.inner_text("#kpis")
        assert not fires or "no labels" in page.inner_text("#card")
    assert fires or "Dead" in page.inner_text("#card")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowLeft")
    assert page.errors == []


def test_dense_tags_match_the_dense_count(browser, tmp_path):
    """A unit active on 10,001 of 20,001 samples (0.50005) is dense, one on 10,000 (0.49998)
    is not; both frequencies show as 0.5 in the table, whose rounded value the tag was read
    from, so the first went untagged while the overview counted it."""
    n = 20001
    H = np.zeros((n, 3))
    H[:10001, 0] = 1.0
    H[:10000, 1] = 1.0
    H[:5, 2] = 1.0
    X = np.random.default_rng(0).random((n, 16))
    page = load(browser, write_explorer(tmp_path, H, np.eye(3, 16), X, image_shape=(4, 4)))
    tagged = page.eval_on_selector_all(
        "#units tbody tr[data-unit]", "rs => rs.filter(r => r.querySelector('.tag.dense'))"
        ".map(r => +r.dataset.unit)")
    assert tagged == [0]
    assert page.errors == []


def test_enter_on_a_sort_button_sorts_and_class_names_keep_their_start(browser, tmp_path):
    """Enter on a focused sort button opened unit 0's card; a long class name in the card's
    class mix showed only its end ("riptive-name")."""
    rng = np.random.default_rng(0)
    H = np.abs(rng.normal(size=(60, 5))).astype(np.float32)
    classes = [f"class-{i}-with-a-rather-long-descriptive-name" for i in range(3)]
    path = write_explorer(tmp_path / "p", H, rng.normal(size=(5, 16)), rng.random((60, 16)),
                          y=np.arange(60) % 3, classes=classes, image_shape=(4, 4))
    page = load(browser, path)
    page.focus("th[data-key=freq] button")
    page.keyboard.press("Enter")
    assert card_unit(page) is None
    assert page.get_attribute("th[data-key=freq]", "aria-sort") != "none"
    page.click("tr[data-unit='0']")
    labels = page.eval_on_selector_all("#card svg text", "ts => ts.map(t => t.textContent)")
    assert any(t.startswith("class-") for t in labels), labels
    assert page.locator("#card .sprite[role=img][aria-label]").count() >= 1
    assert page.errors == []


def test_tab_stays_in_the_open_card(browser, digits_page):
    page = load(browser, digits_page[0])
    page.click("tr[data-unit='0']")
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('card').contains(document.activeElement)")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.dataset.unit") == "0"
    assert page.errors == []
