"""``psae reproduce --data``: files psae has never seen (an 8 x 8 image npz with its own test
split, a labelled CSV without one, an unlabelled npz of series), end to end; refused files,
resuming on a changed file, the protocol rule and the splits; and ``psae explore``."""

import csv
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import psae
from psae.cli import main
from psae.datasets import Dataset
from psae.reproduce.data import split_dataset
from psae.reproduce.paper.settings import DataProtocol, protocol_for, protocol_for_data

MODELS = ["rae", "psae"]
KEYS = ["digits8x8", "rows", "waves"]
DATA_RE = re.compile(r'<script type="application/json" id="psae-data">(.*?)</script>', re.S)


def _write_files(d: Path) -> dict[str, Path]:
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    tr, te, rows = idx[:500], idx[500:650], idx[650:950]
    files = {"digits8x8": d / "digits8x8.npz", "rows": d / "rows.csv", "waves": d / "waves.npz",
             "bad": d / "bad.npz", "words": d / "words.csv"}
    np.savez(files["digits8x8"], X_train=X[tr].reshape(-1, 8, 8), y_train=y[tr],
             X_test=X[te].reshape(-1, 8, 8), y_test=y[te])
    with open(files["rows"], "w") as f:
        f.write(",".join([f"px{i}" for i in range(64)] + ["label"]) + "\n")
        f.writelines(",".join(f"{v:g}" for v in X[i]) + f",{y[i]}\n" for i in rows)
    t = np.linspace(0, 1, 24)
    waves = [np.sin(2 * np.pi * rng.integers(1, 4) * t + rng.uniform(0, 6)) for _ in range(240)]
    np.savez(files["waves"], X=np.array(waves, dtype=np.float32))
    files["bad"].write_bytes(b"this is not a zip archive")
    files["words"].write_text("a,b,label\n1,2,0\n3,oops,1\n")
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return _write_files(tmp_path_factory.mktemp("userdata"))


@pytest.fixture(scope="module")
def run_dir(files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reproduce-data") / "run"
    cmd = [sys.executable, "-m", "psae", "reproduce", "--quick", "--models", ",".join(MODELS),
           "--out", str(out), "--quiet", "--device", "cpu"]
    for k in KEYS:
        cmd += ["--data", str(files[k])]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "label column: 'label'" in res.stderr  # what the reader decided is said
    return out


@pytest.fixture(scope="module")
def results(run_dir) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_every_output_is_written(run_dir, results):
    for name in ("results.json", "results.csv", "report.html", "report.md", "log.txt",
                 "run.json"):
        assert (run_dir / name).stat().st_size > 0, name
    assert list(results["datasets"]) == KEYS and results["models"] == MODELS
    assert {(c["dataset"], c["model"]) for c in results["final"]} == \
        {(k, m) for k in KEYS for m in MODELS}
    for kind in ("sparseness", "l0", "filters", "recons", "curves", "sweep"):
        assert [Path(p).stem for p in results["figures"][kind]] == [f"{kind}_{k}" for k in KEYS]
    for k in KEYS:
        for m in MODELS:
            entry = results["explorer"][k][m]
            assert (run_dir / entry["page"]).is_file() and entry["bytes"] < 3e6
            model = psae.load(run_dir / entry["model_dir"])
            assert [name for name, _ in model.steps] == ["normalizer", "autoencoder"]
            n_comp = results["datasets"][k]["protocol"]["n_components"]
            page = json.loads(DATA_RE.search((run_dir / entry["page"]).read_text()).group(1))
            assert page["M"] == model[-1].n_components == n_comp
            assert page["N"] == entry["samples"] == results["datasets"][k]["n_test"]


def test_report_names_each_file_with_its_sha256_and_counts(files, results, run_dir):
    md = (run_dir / "report.md").read_text()
    page = (run_dir / "report.html").read_text()
    for k in KEYS:
        sha = hashlib.sha256(files[k].read_bytes()).hexdigest()
        info = results["datasets"][k]
        assert info["sha256"] == sha and info["source"] == str(files[k])
        assert f"file {files[k]}, SHA-256 {sha}" in md and sha in page
    d, r, w = (results["datasets"][k] for k in KEYS)
    assert (d["n_train"], d["n_test"]) == (500, 150)  # the file's own test split
    assert (r["n_train"], r["n_test"]) == (240, 60)  # 20 % of 300 rows carved out
    assert "test split: 20% of the file's 300 rows (60) carved out, stratified by label" \
        in r["splits"]
    assert (w["n_train"], w["n_test"]) == (192, 48)
    assert "carved out, random, seed 0" in w["splits"]
    assert d["classes"] == r["classes"] == ", ".join(str(i) for i in range(10))
    assert w["classes"] == "none (no labels)" and r["label_column"] == "label"
    assert "Data: rows.csv: 240 training rows" in md


def test_unlabelled_file_gets_every_measure_but_ca(results, run_dir):
    for c in results["final"]:
        t = c["test"]
        assert all(np.isfinite(t[k]) for k in ("RE", "FVU", "S", "SSD", "dead_units"))
        assert np.isfinite(t["L0"]["std"])
        assert (t["CA"] is None) == (c["dataset"] == "waves"), c["dataset"]
    assert results["summary"]["waves"]["psae"]["CA"] == {"mean": None, "std": None, "n": 0}
    info = results["datasets"]["waves"]
    assert info["CA"] == "not computed: no labels" and info["selection"].startswith(
        "validation RE")
    # selection without labels: the grid point with the lowest validation RE
    pts = [g for g in results["grid"] if g["dataset"] == "waves" and g["model"] == "psae"]
    assert [g["selected"] for g in pts] == [g["val"]["RE"] == min(p["val"]["RE"] for p in pts)
                                            for g in pts]
    md = (run_dir / "report.md").read_text()
    assert "CA not computed on waves.npz: no labels" in md
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert {r["CA"] for r in rows if r["dataset"] == "waves"} == {""}
    assert all(r["CA"] and r["FVU"] and r["L0_std"] for r in rows if r["dataset"] != "waves")


def test_images_where_the_data_have_an_image_shape_plots_otherwise(results, run_dir):
    assert results["datasets"]["digits8x8"]["shape"] == [8, 8]
    assert results["datasets"]["rows"]["shape"] is None  # 64 columns: not guessed 8 x 8
    md = (run_dir / "report.md").read_text()

    def caption(stem):
        return md.split(f"![{stem}]", 1)[1].split("\n\n")[1]

    def ink(stem):
        with Image.open(run_dir / "figures" / f"{stem}.png") as im:
            return float((np.asarray(im.convert("L")) < 200).mean())

    assert "line plots" not in caption("filters_digits8x8")
    for k in ("rows", "waves"):
        assert "drawn as line plots (the data have no image shape)" in caption(f"filters_{k}")
        assert "drawn as line plots" in caption(f"recons_{k}")
        assert ink(f"filters_{k}") * 2 < ink("filters_digits8x8")


@pytest.mark.parametrize("which, words", [
    ("bad", "not a .npz archive"),
    ("words", "line 3: non-numeric value 'oops'"),
    ("missing", "no such file or folder"),
])
def test_a_refused_file_fails_before_training(files, tmp_path, capsys, which, words):
    path = files.get(which, tmp_path / "nowhere.npz")
    out = tmp_path / "run"
    assert main(["reproduce", "--data", str(files["waves"]), "--data", str(path), "--out",
                 str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert words in err and str(path) in err
    assert not out.exists()  # nothing written, nothing trained


def test_label_column_needs_a_csv(files, tmp_path, capsys):
    assert main(["reproduce", "--data", str(files["waves"]), "--label-column", "3", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 2
    assert "--label-column applies to .csv files only" in capsys.readouterr().err


def test_resume_on_a_changed_file_is_refused(files, tmp_path, capsys):
    data = tmp_path / "w.npz"
    data.write_bytes(files["waves"].read_bytes())
    out = tmp_path / "run"
    args = ["reproduce", "--data", str(data), "--models", "rae", "--quick", "--epochs", "2",
            "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    fp = json.loads((out / "run.json").read_text())["fingerprint"]
    assert fp["data"]["w"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    with np.load(data) as z:
        X = z["X"].copy()
    X[0, 0] += 1.0  # one value changed: same shape, same protocol
    np.savez(data, X=X)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "started on other data" in err and str(data) in err and "changed since" in err
    data.write_bytes(files["waves"].read_bytes())  # the original bytes: resumes, repeats nothing
    assert main([*args, "--resume"]) == 0
    log = (out / "log.txt").read_text()
    assert log.count("already done, skipped") == 2  # 1 grid point + 1 final


def test_protocol_rule_scales_like_the_named_protocols():
    digits, mnist = protocol_for("digits"), protocol_for("mnist")
    rule = protocol_for_data(1437, 64)
    assert (rule.n_components, rule.epochs) == (digits.n_components, digits.epochs)
    quick = protocol_for_data(1437, 64, quick=True)
    assert (quick.n_components, quick.epochs) == (protocol_for("digits", True).n_components,
                                                  protocol_for("digits", True).epochs)
    big = protocol_for_data(60000, 784)
    assert (big.n_components, big.epochs, big.n_val, big.grid_train) == \
        (mnist.n_components, mnist.epochs, mnist.n_val, mnist.grid_train)
    assert protocol_for_data(500, 4).n_components == 20  # the floor
    assert protocol_for_data(500, 64, n_components=7, epochs=3).n_components == 7


def test_a_folders_sha256_covers_its_files_names_and_bytes(tmp_path):
    from psae.io.digest import sha256_tree as file_sha256

    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "1.png").write_bytes(b"one")
    first = file_sha256(tmp_path)
    assert file_sha256(tmp_path) == first
    (tmp_path / "train" / "a" / "1.png").write_bytes(b"two")
    assert file_sha256(tmp_path) != first
    (tmp_path / "train" / "a" / "1.png").write_bytes(b"one")
    (tmp_path / "train" / "a" / "1.png").rename(tmp_path / "train" / "a" / "2.png")
    assert file_sha256(tmp_path) not in (first, file_sha256(tmp_path / "train" / "a" / "2.png"))


def test_explorer_pages_are_bounded_by_rows_and_values():
    from psae.reproduce.pages import explore_rows

    assert explore_rows(64) == explore_rows(784) == 2000  # digits, MNIST
    assert explore_rows(3072) == 510  # CIFAR-10: 2,000 MNIST images' worth of values
    assert explore_rows(10**7) == 1


def test_splits_are_stratified_seeded_and_fall_back_to_random():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [40, 30, 20, 10])
    ds = Dataset("x", rng.random((100, 5), dtype=np.float32), y)
    proto = DataProtocol(n_components=8, epochs=1)
    a, b = split_dataset(ds, proto, "x"), split_dataset(ds, proto, "x")
    assert np.array_equal(a.X_test, b.X_test) and len(a.X_test) == 20
    assert np.bincount(a.y_test).tolist() == [8, 6, 4, 2]  # the classes' shares kept
    assert np.bincount(a.y_val).tolist() == [6, 5, 3, 2]
    assert "stratified by label" in a.notes[0]
    lone = Dataset("x", ds.X_train, np.r_[y[:-1], 4])  # class 4 has one row: cannot stratify
    assert "random, seed 0" in split_dataset(lone, proto, "x").notes[0]


# ----------------------------------------------------------------------------- psae explore
def test_explore_writes_a_page_for_a_saved_model(files, run_dir, tmp_path, capsys):
    model = run_dir / "models" / "digits8x8__psae"
    out = tmp_path / "page"
    assert main(["explore", "--model", str(model), "--data", str(files["digits8x8"]),
                 "--out", str(out), "--max-samples", "50"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["split"] == "test" and (info["samples"], info["of"]) == (50, 150)
    page = json.loads(DATA_RE.search((out / "index.html").read_text()).group(1))
    assert page["N"] == 50 and page["M"] == psae.load(model)[-1].n_components
    assert page["image"] == {"h": 8, "w": 8, "colour": False}
    assert len(set(page["sample_label"])) > 5  # a stratified sample keeps the classes
    # a CSV without a test split: its training rows, said; plots, not images
    assert main(["explore", "--model", str(run_dir / "models" / "rows__rae"), "--data",
                 str(files["rows"]), "--out", str(tmp_path / "rows")]) == 0
    cap = capsys.readouterr()
    assert "no test split: exploring its 300 training rows" in cap.err
    page = json.loads(DATA_RE.search((tmp_path / "rows" / "index.html").read_text()).group(1))
    assert page["N"] == 300 and page["image"] is None and "plot" in page


def test_explore_takes_a_bare_autoencoder_and_refuses_mismatched_data(files, tmp_path,
                                                                        capsys):
    with np.load(files["waves"]) as z:
        X = z["X"]
    sae = psae.SparseAutoencoder(n_components=6, epochs=4, random_state=0).fit(X)
    psae.save(sae, tmp_path / "bare")
    assert main(["explore", "--model", str(tmp_path / "bare"), "--data", str(files["waves"]),
                 "--out", str(tmp_path / "p"), "--max-samples", "0"]) == 0
    cap = capsys.readouterr()
    assert "carries no preprocessing" in cap.err
    assert json.loads(cap.out)["samples"] == 240  # 0: no cap
    page = json.loads(DATA_RE.search((tmp_path / "p" / "index.html").read_text()).group(1))
    assert page["classes"] is None and page["M"] == 6
    assert main(["explore", "--model", str(tmp_path / "bare"), "--data",
                 str(files["digits8x8"]), "--out", str(tmp_path / "q")]) == 1
    assert "64 features per sample but the model" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_the_cifar_label_follows_the_copy_read(tmp_path, monkeypatch):
    """The official python release is labelled CIFAR-10; only the JPEG copy says so."""
    import io
    import pickle
    import tarfile

    from psae import datasets
    from psae.reproduce.data import load_splits

    rng = np.random.default_rng(0)
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
        for name in names:
            body = ({b"label_names": [f"c{i}".encode() for i in range(10)]}
                    if name == "batches.meta" else
                    {b"labels": [i % 10 for i in range(20)],
                     b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8)})
            data = pickle.dumps(body, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    load = datasets.load
    monkeypatch.setattr(datasets, "load", lambda name, root=None, **kw: load(
        name, root, cache=tmp_path / "c", verify=False, download=False, **kw))
    proto = protocol_for("cifar10", quick=True, n_val=20)
    splits = load_splits("cifar10", proto, str(tmp_path))
    assert splits.label == "CIFAR-10"


def test_a_flat_square_image_npz_is_drawn_as_images(tmp_path):
    """X of shape (N, 256) is most often 16 x 16 images stored flat: their atoms are drawn as
    16 x 16 images, and the note says how to give another shape; a width that is no square
    (the waves' 24) stays a row of values."""
    from psae import datasets
    from psae.reproduce.paper.figures import has_images

    X, y = load_digits(return_X_y=True)
    flat = np.kron(X.reshape(-1, 8, 8), np.ones((2, 2))).reshape(len(X), 256)  # 16 x 16
    np.savez(tmp_path / "flat16.npz", X=flat[:300].astype(np.float32), y=y[:300])
    ds = datasets.load(tmp_path / "flat16.npz")
    assert ds.shape == (16, 16) and any("drawn as square images" in n for n in ds.notes)
    split = split_dataset(ds, protocol_for_data(240, 256, quick=True), "flat16.npz")
    assert split.shape == (16, 16)
    assert has_images({"datasets": {"f": {"shape": list(split.shape), "n_features": 256}}}, "f")
    np.savez(tmp_path / "w.npz", X=np.zeros((30, 24), np.float32))
    assert datasets.load(tmp_path / "w.npz").shape is None


def test_hold_out_test_carves_the_split_reproduce_carves(files, tmp_path, capsys):
    """A file without a test split: reproduce scored on 20 % it carved, fit trained on every
    row; --hold-out-test gives fit, encode and evaluate the same test rows."""
    import argparse

    from psae import datasets
    from psae.cli.data import add_data_args, load_data
    from psae.errors import ParameterError

    p = argparse.ArgumentParser()
    add_data_args(p)
    ds = load_data(p.parse_args(["--data", str(files["rows"]), "--hold-out-test"]))
    full = datasets.load(files["rows"])
    split = split_dataset(full, protocol_for_data(len(full.X_train), 64), "rows.csv")
    np.testing.assert_array_equal(ds.X_test, split.X_test)
    np.testing.assert_array_equal(ds.X_train, split.X_train)
    assert len(ds.X_train) + len(ds.X_test) == len(full.X_train)
    assert "as psae reproduce carves it" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="has a test split of its own"):
        load_data(p.parse_args(["--data", str(files["digits8x8"]), "--hold-out-test"]))
    assert main(["fit", "--data", str(files["rows"]), "--hold-out-test", "--n-components", "8",
                 "--epochs", "4", "--quiet", "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(files["rows"]),
                 "--hold-out-test", "--json", str(tmp_path / "e.json")]) == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["split"] == "test" and scores["n_samples"] == len(ds.X_test) == 60


def test_a_narrow_file_runs_the_full_paper_protocol_on_the_grid_points_it_can_take(tmp_path):
    """8 features give M = 20 by rule: TopK's full grid (k 10, 25, 50) stopped the run with
    'k must be ... from 1 to n_components=20' before anything was fitted."""
    from psae.reproduce.paper.settings import grid_for

    rng = np.random.default_rng(0)
    path = tmp_path / "narrow.npz"
    np.savez(path, X=rng.random((120, 8)).astype(np.float32), y=np.arange(120) % 3)
    out = tmp_path / "run"
    assert main(["--threads", "1", "reproduce", "--data", str(path), "--models", "topk",
                 "--seeds", "1", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    grid = json.loads((out / "results.json").read_text())["grid"]
    assert [c["params"] for c in grid if c["model"] == "topk"] == [{"k": 10}]
    assert grid_for("topk", n_components=20) == [{"k": 10}]
    assert grid_for("topk", n_components=25) == [{"k": 10}, {"k": 25}]
    with pytest.raises(psae.ParameterError, match="n-components of at least 10"):
        grid_for("batchtopk", n_components=8)


def test_the_matched_sweep_of_unlabelled_data_draws_no_empty_ca_panel(tmp_path, capsys):
    from PIL import Image as PILImage

    path = tmp_path / "nolab.npz"
    np.savez(path, X=np.random.default_rng(0).random((150, 12)).astype(np.float32))
    out = tmp_path / "run"
    assert main(["--threads", "1", "reproduce", "--data", str(path), "--quick", "--protocol",
                 "matched", "--models", "l1,topk", "--out", str(out), "--quiet"]) == 0
    assert "No artists" not in capsys.readouterr().err
    fig = out / "figures" / "matched_sweep_nolab.png"
    with PILImage.open(fig) as im:
        assert im.width < im.height * 2  # one panel (FVU), not two
