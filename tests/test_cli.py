import json
import subprocess
import sys

import numpy as np
import pytest

import psae
from psae.cli import main


@pytest.fixture()
def npz(tmp_path, digits):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    path = tmp_path / "digits.npz"
    np.savez(path, X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte)
    return path


def test_fit_encode_evaluate(tmp_path, npz, capsys):
    model_dir = tmp_path / "model"
    assert main(["fit", "--data", str(npz), "--out", str(model_dir), "--n-components", "40",
                 "--epochs", "20,10,10,10", "--quiet", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 50 and summary["penalty"] == "sql0"
    model = psae.load(model_dir)[-1]  # the autoencoder of the saved pipeline
    assert model.n_components == 40 and model.sigmas == (1.0, 0.5, 0.2, 0.1)

    codes = tmp_path / "codes.npy"
    assert main(["encode", "--model", str(model_dir), "--data", str(npz),
                 "--out", str(codes)]) == 0
    H = np.load(codes)
    assert H.shape == (450, 40) and H.dtype == np.float32
    assert main(["encode", "--model", str(model_dir), "--data", str(npz), "--split", "train",
                 "--out", str(tmp_path / "codes.csv")]) == 0
    assert np.loadtxt(tmp_path / "codes.csv", delimiter=",").shape == (1347, 40)
    capsys.readouterr()

    out_json = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(model_dir), "--data", str(npz),
                 "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "SSD" in printed and "CA" in printed
    res = json.loads(out_json.read_text())
    assert 0 < res["RE"] < 0.0178 and 0 <= res["S"] <= 1 and 0 <= res["SSD"] <= 1
    assert 0.8 < res["CA"] <= 1 and res["n_samples"] == 450
    assert res["L0"]["min"] <= res["L0"]["mean"] <= res["L0"]["max"] <= 40


def test_fit_penalty_options(tmp_path, npz, capsys):
    for pen, extra in [("l1", ["--beta", "0.003"]), ("kl", ["--beta", "0.01", "--rho", "0.1"]),
                       ("none", []), ("l0", ["--lam", "3"])]:
        out = tmp_path / pen
        assert main(["fit", "--data", str(npz), "--out", str(out), "--penalty", pen,
                     "--n-components", "10", "--epochs", "4", "--quiet", "--device", "cpu",
                     *extra]) == 0
        m = psae.load(out)[-1]
        assert m.penalty == pen
    assert psae.load(tmp_path / "kl")[-1].rho == 0.1


def test_fit_takes_a_models_reproduce_name_for_its_penalty(tmp_path, npz, capsys):
    """One model, one id: ``psae reproduce --models psae`` and ``psae fit --penalty psae``."""
    for alias, name in (("psae", "sql0"), ("rae", "none")):
        out = tmp_path / alias
        assert main(["fit", "--data", str(npz), "--out", str(out), "--penalty", alias,
                     "--n-components", "10", "--epochs", "4", "--quiet"]) == 0
        assert psae.load(out)[-1].mechanism.name == name


def test_threads_option(tmp_path, npz, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "fit", "--data", str(npz), "--out", str(tmp_path / "m"),
                     "--n-components", "4", "--epochs", "4", "--quiet", "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 1
        # after the command too (it was "unrecognized arguments"), and that one wins
        assert main(["--threads", "1", "fit", "--threads", "2", "--data", str(npz),
                     "--out", str(tmp_path / "m"), "--n-components", "4", "--epochs", "4",
                     "--quiet", "--device", "cpu"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert main(["--threads", "0", "datasets"]) == 2
    assert main(["datasets", "--threads", "0"]) == 2


def test_csv_input(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(60, 6))
    csv = tmp_path / "x.csv"
    np.savetxt(csv, X, delimiter=",")
    assert main(["fit", "--data", str(csv), "--out", str(tmp_path / "m"), "--n-components", "4",
                 "--epochs", "4", "--quiet", "--device", "cpu"]) == 0
    assert psae.load(tmp_path / "m")[-1].n_features_in_ == 6


def test_bad_input_is_a_clear_error(tmp_path, npz, capsys):
    assert main(["fit", "--data", str(npz), "--out", str(tmp_path / "m"),
                 "--sigmas", "0.1,0.5", "--quiet"]) == 2
    assert "strictly decreasing" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main(["fit", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "m"),
                 "--quiet"]) == 1
    assert "missing.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "--data", str(npz), "--out", "x", "--sigmas", "a,b"])


def test_failed_fit_keeps_existing_model_dir(tmp_path, npz, capsys):
    out = tmp_path / "m"
    assert main(["fit", "--data", str(npz), "--out", str(out), "--n-components", "5",
                 "--epochs", "4", "--quiet", "--device", "cpu"]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["fit", "--data", str(npz), "--out", str(out), "--lam", "-1", "--quiet"]) == 2
    assert (out / "model.safetensors").read_bytes() == before


def test_help_texts():
    out = subprocess.run([sys.executable, "-m", "psae", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for cmd in ("fit", "encode", "evaluate", "datasets"):
        assert cmd in out
    for cmd in ("fit", "encode", "evaluate", "datasets"):
        sub = subprocess.run([sys.executable, "-m", "psae", cmd, "--help"], capture_output=True,
                             text=True, check=True).stdout
        assert "usage: psae " + cmd in sub and len(sub) > 200


def test_datasets_download_fetches_checks_and_places_the_files(tmp_path, monkeypatch, capsys):
    """The documented data step of a fresh machine, against a file:// mirror of the shared data
    (the same code path as the official URLs: fetch, checksum against the published digests,
    atomic rename)."""
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    monkeypatch.setenv("PSAE_MIRROR", shared.as_uri())
    root = tmp_path / "data"
    assert main(["datasets", "--download", "optdigits,mnist", "--data-dir", str(root)]) == 0
    assert (root / "optdigits" / "optdigits.tra").is_file()
    assert (root / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    listing = capsys.readouterr().out
    assert "optdigits  present" in listing and "mnist      present" in listing
    assert main(["datasets", "--download", "bogus", "--data-dir", str(root)]) == 2


def test_encode_of_picked_rows_writes_their_row_numbers_and_labels(tmp_path, capsys):
    """--hold-out-test and --limit encode a shuffled or thinned pick of the file's rows: the
    codes could not be matched back to their rows."""
    rng = np.random.default_rng(0)
    X = rng.random((120, 6)).astype(np.float32)
    X[:, 0] = np.arange(120)  # each row says its own number
    data = tmp_path / "rows.npz"
    np.savez(data, X=X, y=np.arange(120) % 3)
    model = tmp_path / "m"
    assert main(["fit", "--data", str(data), "--out", str(model), "--n-components", "4",
                 "--epochs", "4", "--quiet", "--device", "cpu", "--hold-out-test"]) == 0
    for extra in (["--hold-out-test"], ["--limit", "50"], ["--limit", "60", "--hold-out-test"]):
        out = tmp_path / "codes.npz"
        assert main(["encode", "--model", str(model), "--data", str(data), "--out", str(out),
                     "--force", *extra]) == 0
        with np.load(out) as z:
            idx, y, H = z["index"], z["y"], z["H"]
        assert len(idx) == len(H) == len(y) < 120
        np.testing.assert_array_equal(y, idx % 3)
        whole = tmp_path / "all.npz"
        assert main(["encode", "--model", str(model), "--data", str(data), "--split", "train",
                     "--out", str(whole), "--force"]) == 0
        with np.load(whole) as z:
            assert "index" not in z.files
            np.testing.assert_allclose(z["H"][idx], H, rtol=1e-5, atol=1e-6)
    capsys.readouterr()
