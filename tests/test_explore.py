"""The feature explorer's pure parts: unit statistics, sprites, the page's data and its
self-containment, and the size of an MNIST-shaped page."""

import base64
import io
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from psae.explore import sprites, unit_stats, write_explorer
from psae.explore.histograms import activation_histograms
from psae.explore.stats import sample_l0, top_samples

DATA_RE = re.compile(r'<script type="application/json" id="psae-data">(.*?)</script>', re.S)


def page_data(path) -> dict:
    return json.loads(DATA_RE.search(path.read_text()).group(1))


@pytest.fixture
def toy():
    """6 samples (classes 0,0,0,1,1,2), 4 units: 0 fires on class 0 only, 1 never, 2 always,
    3 on one sample of each class (base proportions would be 3:2:1, so it is not selective
    to the maximum, but not 0 either)."""
    y = np.array([0, 0, 0, 1, 1, 2])
    H = np.zeros((6, 4))
    H[:3, 0] = [0.5, 0.2, 0.02]
    H[:, 1] = 0.01  # exactly the threshold: not active
    H[:, 2] = [1, 2, 3, 4, 5, 6]
    H[[0, 3, 5], 3] = [-0.4, 0.3, 0.3]  # a negative code is active too
    atoms = np.array([[1.0, 0], [0, 1], [3, 4], [1, 1]])
    return H, atoms, y


def test_unit_stats_by_hand(toy):
    H, atoms, y = toy
    st = unit_stats(H, atoms, y)
    np.testing.assert_array_equal(st["count"], [3, 0, 6, 3])
    np.testing.assert_allclose(st["frequency"], [0.5, 0, 1, 0.5])
    np.testing.assert_array_equal(st["dead"], [False, True, False, False])
    np.testing.assert_array_equal(st["dense"], [False, False, True, False])
    np.testing.assert_allclose(st["mean_active"][[0, 2, 3]], [0.24, 3.5, 0.2 / 3])
    assert np.isnan(st["mean_active"][1])
    np.testing.assert_allclose(st["mean_all"], H.mean(axis=0))
    np.testing.assert_allclose(st["max_abs"], [0.5, 0.01, 6, 0.4])
    # a unit firing on one class only has the maximal selectivity, 1
    assert st["selectivity"][0] == pytest.approx(1.0)
    assert st["preferred_class"][0] == 0
    assert np.isnan(st["selectivity"][1]) and st["preferred_class"][1] == -1
    # fires on everything: exactly the base rates
    assert st["selectivity"][2] == pytest.approx(0.0)
    # one sample per class: class 2 is 1/3 of firing vs 1/6 base -> (1/3-1/6)/(5/6) = 0.2
    assert st["selectivity"][3] == pytest.approx(0.2)
    assert st["preferred_class"][3] == 2
    assert np.all((st["selectivity"][~st["dead"]] >= 0) & (st["selectivity"][~st["dead"]] <= 1))
    energy = (H**2).mean(axis=0) * (atoms**2).sum(axis=1)
    np.testing.assert_allclose(st["contribution"], energy / energy.sum())
    np.testing.assert_array_equal(st["class_counts"][3], [1, 1, 1])


def test_unit_stats_no_labels_and_all_zero():
    st = unit_stats(np.zeros((5, 3)), np.ones((3, 2)))
    assert "selectivity" not in st
    assert st["dead"].all() and not st["dense"].any()
    np.testing.assert_array_equal(st["contribution"], 0)
    np.testing.assert_array_equal(sample_l0(np.zeros((5, 3))), 0)


def test_unit_stats_frequency_matches_count_on_random_codes():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((3000, 7)) * (rng.random((3000, 7)) < 0.2)
    st = unit_stats(H, rng.standard_normal((7, 4)), threshold=0.1)
    np.testing.assert_allclose(st["frequency"], (np.abs(H) > 0.1).mean(axis=0))
    np.testing.assert_array_equal(sample_l0(H, 0.1), (np.abs(H) > 0.1).sum(axis=1))


def test_top_samples_rank_by_magnitude_and_skip_inactive(toy):
    H, _, _ = toy
    tops = top_samples(H, top_n=2)
    assert tops[0].tolist() == [0, 1]
    assert tops[1].tolist() == []
    assert tops[2].tolist() == [5, 4]
    assert tops[3][0] == 0  # |-0.4| is the largest
    assert top_samples(H, top_n=10)[0].tolist() == [0, 1, 2]


def test_activation_histograms_count_active_codes(toy):
    H, _, _ = toy
    lo, hi, counts = activation_histograms(H, bins=5)
    np.testing.assert_array_equal(counts.sum(axis=1), [3, 0, 6, 3])
    assert (lo[2], hi[2]) == (1, 6)
    assert counts[2].tolist() == [1, 1, 1, 1, 2]  # the max falls in the last bin
    assert (lo[1], hi[1]) == (0, 0)


def test_dedup_stores_shared_samples_once():
    unique, tiles = sprites.dedup([np.array([7, 3]), np.array([], dtype=int), np.array([3, 9])])
    assert unique.tolist() == [3, 7, 9]
    assert [t.tolist() for t in tiles] == [[1, 0], [], [0, 2]]
    assert sprites.dedup([np.array([], dtype=int)])[0].size == 0


@pytest.mark.parametrize("n, shape", [(1, (4, 3)), (37, (4, 3)), (300, (5, 5, 3))])
def test_pack_places_every_tile_where_layout_says(n, shape):
    rng = np.random.default_rng(n)
    tiles = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    lay = sprites.layout(n, shape[0], shape[1], max_px=40)  # small sheets: several of them
    sheets = sprites.pack(tiles, lay)
    assert len(sheets) == lay.n_sheets
    assert all(s.shape[0] <= 40 and s.shape[1] <= 40 for s in sheets)
    h, w = shape[:2]
    for t in range(n):
        s, r, c = lay.position(t)
        np.testing.assert_array_equal(sheets[s][r * h : (r + 1) * h, c * w : (c + 1) * w], tiles[t])


def test_png_data_uri_round_trips_grey_and_palette():
    sheet = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    for palette in (None, sprites.DIVERGING):
        uri = sprites.png_data_uri(sheet, palette)
        assert uri.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert img.mode == ("L" if palette is None else "P")
        np.testing.assert_array_equal(np.asarray(img), sheet)
    # the diverging map: white-ish at 0 (128), blue below, red above
    assert sprites.DIVERGING[128].min() > 240
    assert sprites.DIVERGING[1][2] > sprites.DIVERGING[1][0]
    assert sprites.DIVERGING[255][0] > sprites.DIVERGING[255][2]


def _no_external_refs(text: str) -> None:
    assert "http://" not in text and "https://" not in text
    for m in re.finditer(r'\b(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', text):
        assert m.group(1).startswith(("data:", "#")), m.group(0)
    for m in re.finditer(r"url\(\s*[\"']?([^\"')]*)", text):
        assert m.group(1).startswith("data:"), m.group(0)
    assert "@import" not in text


def test_page_is_self_contained_and_carries_the_data(tmp_path, toy):
    H, atoms, y = toy
    X = np.arange(12, dtype=float).reshape(6, 2)
    meta = {"model": "</script><script>alert(1)</script>", "data": "toy"}
    path = write_explorer(
        tmp_path / "ex",
        H,
        atoms,
        X,
        y=y,
        classes=["a", "b", "</script>"],
        image_shape=(1, 2),
        title="toy <page> {{SCRIPT}}",
        meta=meta,
    )
    assert path == tmp_path / "ex" / "index.html"
    text = path.read_text()
    _no_external_refs(text)
    assert text.count("</script>") == 2  # the data and the script; user text is escaped
    assert "<h1>toy &lt;page&gt; {{SCRIPT}}</h1>" in text  # no slot inside user text
    d = page_data(path)
    assert d["M"] == 4 and d["N"] == 6 and d["classes"][2] == "</script>"
    assert d["units"]["freq"] == [0.5, 0, 1, 0.5]
    assert d["units"]["mean"][1] is None  # NaN travels as null
    assert [len(t) for t in d["top"]] == [3, 0, 6, 3]
    assert len(d["samples"]) == 6  # shared samples stored once
    assert d["overview"]["dead"] == 1 and d["overview"]["dense"] == 1
    assert d["overview"]["dense_units"] == [2]


def test_page_without_images_or_labels(tmp_path):
    rng = np.random.default_rng(1)
    H = np.abs(rng.standard_normal((50, 3)))
    X = rng.standard_normal((50, 300))  # longer than the plot's 256 points: binned
    path = write_explorer(tmp_path, H, rng.standard_normal((3, 300)), X)
    d = page_data(path)
    assert d["image"] is None and d["classes"] is None and "sel" not in d["units"]
    assert d["plot"]["binned"] and d["plot"]["points"] == 256
    assert len(base64.b64decode(d["plot"]["inputs"])) == len(d["samples"]) * 256
    _no_external_refs(path.read_text())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"H": np.zeros((3, 2, 1))}, "H must be"),
        ({"atoms": np.zeros((3, 4))}, "atoms must be"),
        ({"X_display": np.zeros((2, 4))}, "X_display must be"),
        ({"image_shape": (3, 3)}, "image_shape"),
        ({"y": np.array([0, 1, -1])}, "y must be"),
        ({"y": np.array([0, 1, 2]), "classes": ["a", "b"]}, "class names"),
        ({"contribution": np.zeros(3)}, "contribution must be"),
    ],
)
def test_write_explorer_rejects_inconsistent_inputs(tmp_path, kwargs, match):
    args = {"H": np.zeros((3, 2)), "atoms": np.zeros((2, 4)), "X_display": np.zeros((3, 4))}
    args.update(kwargs)
    H, atoms, X = args.pop("H"), args.pop("atoms"), args.pop("X_display")
    with pytest.raises(ValueError, match=match):
        write_explorer(tmp_path, H, atoms, X, **args)


def test_mnist_shaped_page_stays_under_25_mb(tmp_path):
    """M = 1000, N = 10,000, 28 x 28, top 16, in the worst case for the sprites: every sample
    in some top list, pixels and atoms incompressible noise."""
    rng = np.random.default_rng(0)
    N, M = 10_000, 1000
    H = rng.random((N, M), dtype=np.float32)
    H[H < 0.97] = 0
    j = np.arange(M)
    for k in range(16):
        H[(16 * j + k) % N, j] = 2.0 + k
    X = rng.integers(0, 256, (N, 784), dtype=np.uint8)
    atoms = rng.standard_normal((M, 784)).astype(np.float32)
    start = time.perf_counter()
    path = write_explorer(tmp_path, H, atoms, X, y=rng.integers(0, 10, N), image_shape=(28, 28))
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    print(f"MNIST-shaped page: {size / 1e6:.2f} MB written in {seconds:.1f} s")
    assert len(page_data(path)["samples"]) == N
    assert size < 25e6


def test_thumbnails_carry_the_rows_own_numbers(tmp_path, toy):
    """A page of a stratified sample numbered its thumbnails 0..N-1 within the sample: #1234 was
    another image in the test split (a helper's review)."""
    H, atoms, y = toy
    ids = np.array([40, 7, 93, 12, 5, 61])  # the rows' places in the data they were drawn from
    X = np.arange(12.0).reshape(6, 2)
    data = page_data(write_explorer(tmp_path / "a", H, atoms, X, y=y, sample_ids=ids))
    plain = page_data(write_explorer(tmp_path / "b", H, atoms, X, y=y))
    assert data["samples"] == [int(ids[t]) for t in plain["samples"]]
    assert data["top"] == plain["top"] and data["sample_label"] == plain["sample_label"]
    with pytest.raises(ValueError, match="sample_ids must be 6 integers"):
        write_explorer(tmp_path / "c", H, atoms, X, sample_ids=ids[:3])


def test_a_model_page_numbers_its_sample_by_the_rows_given(tmp_path):
    from psae import SparseAutoencoder
    from psae.explore.model_page import sample_rows, write_model_page

    rng = np.random.default_rng(0)
    X, y = rng.random((300, 6)).astype(np.float32), np.repeat(np.arange(3), 100)
    sae = SparseAutoencoder(n_components=4, epochs=4, random_state=0).fit(X)
    path, shown = write_model_page(tmp_path / "p", sae, X, y, max_samples=60)
    idx = sample_rows(y, 300, 60)
    assert shown == 60 and set(page_data(path)["samples"]) <= set(idx.tolist())
    assert max(page_data(path)["samples"]) >= 60  # row numbers of all 300, not of the 60


def test_a_unit_that_fires_on_every_class_alike_prefers_none():
    """An RAE unit active on every sample has zero excess for every class: argmax named class
    0 its preferred class (948 of 1,000 units on MNIST)."""
    H = np.ones((30, 2), np.float32)
    H[:10, 1] = 0  # unit 1 misses class 0: it prefers the others
    st = unit_stats(H, np.eye(2), np.arange(30) % 3)
    assert st["preferred_class"][0] == -1 and st["selectivity"][0] == 0
    assert st["preferred_class"][1] in (1, 2)


def test_a_float32_code_at_the_threshold_counts_alike_everywhere():
    """float32(0.1) rounds up: an entry of exactly 0.1 was active in the unit's frequency but
    not in the sample's L0 or the class mix."""
    H = np.zeros((60, 3), np.float32)
    H[:30, 0] = 0.1
    st = unit_stats(H, np.eye(3), np.arange(60) % 2, threshold=0.1)
    assert st["count"][0] == sample_l0(H, 0.1).sum()
    assert st["count"][0] == 30


def test_explore_numbers_the_rows_of_a_carved_split_and_names_the_data(tmp_path, capsys):
    from psae.cli import main

    rng = np.random.default_rng(0)
    X = rng.random((120, 6)).astype(np.float32)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=np.arange(120) % 3)
    assert main(["fit", "--data", str(data), "--out", str(tmp_path / "m"), "--n-components",
                 "4", "--epochs", "4", "--quiet", "--device", "cpu", "--hold-out-test"]) == 0
    assert main(["explore", "--model", str(tmp_path / "m"), "--data", str(data),
                 "--hold-out-test", "--out", str(tmp_path / "p")]) == 0
    page = page_data(tmp_path / "p" / "index.html")
    from psae.reproduce.data import TEST_FRACTION, carve

    _, _, part, _, _ = carve(np.arange(120), np.arange(120) % 3, TEST_FRACTION)
    assert set(page["samples"]) <= set(part.tolist()) and max(page["samples"]) >= len(part)
    html = (tmp_path / "p" / "index.html").read_text()
    assert f"<dd>{data}, test split" in html
    assert main(["fit", "--data", "digits", "--out", str(tmp_path / "dm"), "--n-components",
                 "4", "--epochs", "4", "--quiet", "--device", "cpu"]) == 0
    assert main(["explore", "--model", str(tmp_path / "dm"), "--data", "digits", "--out",
                 str(tmp_path / "dp")]) == 0
    meta = re.search(r'<dl class="meta">(.*?)</dl>',
                     (tmp_path / "dp" / "index.html").read_text(), re.S).group(1)
    assert "<dd>digits (scikit-learn), test split" in meta, meta
    capsys.readouterr()
