"""Issue 9's findings, each a test: a user's files are never deleted, a model carries its
preprocessing, files are shareable, leftovers are cleaned, a collapsed fit fails, and every
failure is said in psae's words."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

import psae
from psae import ModelFormatError, Normalizer, SparseAutoencoder
from psae.cli import main

FIT = ["--n-components", "12", "--epochs", "4", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def cli_model(npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "m"
    assert main(["fit", "--data", str(npz), "--out", str(out), *FIT]) == 0
    return out


def run(*argv, umask=None):
    """psae in a child process: (exit code, stdout, stderr)."""
    pre = [] if umask is None else ["-c", f"import os, sys, runpy; os.umask({umask}); "
                                          "sys.argv[0] = 'psae'; runpy.run_module('psae', "
                                          "run_name='__main__')"]
    cmd = [sys.executable, *(pre or ["-m", "psae"]), *argv]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr


# 1. data loss ------------------------------------------------------------------------------
def test_fit_refuses_a_directory_of_user_files_and_force_keeps_them(npz, tmp_path, capsys):
    docs = tmp_path / "mydocs"
    (docs / "sub").mkdir(parents=True)
    (docs / "thesis.txt").write_text("years of work")
    (docs / "sub" / "y.txt").write_text("more")
    assert main(["fit", "--data", str(npz), "--out", str(docs), *FIT]) == 1
    err = capsys.readouterr().err
    assert "psae did not write" in err and "thesis.txt" in err and "--force" in err
    assert sorted(p.name for p in docs.iterdir()) == ["sub", "thesis.txt"]
    assert main(["fit", "--data", str(npz), "--out", str(docs), "--force", *FIT]) == 0
    assert (docs / "thesis.txt").read_text() == "years of work"
    assert (docs / "sub" / "y.txt").read_text() == "more"
    assert isinstance(psae.load(docs)[-1], SparseAutoencoder)
    # writing again replaces psae's files and still keeps the user's
    assert main(["fit", "--data", str(npz), "--out", str(docs), "--force", *FIT]) == 0
    assert sorted(p.name for p in docs.iterdir()) == [
        "config.json", "model.safetensors", "normalizer.safetensors", "sub", "thesis.txt"]


def test_out_dot_is_refused_clearly_in_a_directory_of_user_files(npz, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    res = subprocess.run([sys.executable, "-m", "psae", "fit", "--data", str(npz), "--out", ".",
                          *FIT], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 1 and "empty name" not in res.stderr
    assert "psae did not write" in res.stderr and "notes.txt" in res.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# 2. a model carries its preprocessing --------------------------------------------------------
def test_cli_model_loads_whole_and_partial_loading_is_explicit(cli_model, npz, tmp_path):
    with pytest.raises(ModelFormatError, match=r"psae\.load"):
        SparseAutoencoder.load(cli_model)
    pipe = psae.load(cli_model)
    assert [type(s).__name__ for _, s in pipe.steps] == ["Normalizer", "SparseAutoencoder"]
    codes = tmp_path / "c.npy"
    assert main(["encode", "--model", str(cli_model), "--data", str(npz), "--out",
                 str(codes)]) == 0
    X_test = np.load(npz)["X_test"]
    np.testing.assert_allclose(np.load(codes), pipe.transform(X_test.astype(np.float32)),
                               atol=1e-6)
    bare = SparseAutoencoder.load(cli_model, drop_preprocessing=True)
    assert not np.allclose(bare.transform(X_test.astype(np.float32)), np.load(codes), atol=0.01)


def test_api_saved_pipeline_and_bare_model_through_the_cli(npz, tmp_path, capsys):
    d = np.load(npz)
    pipe = psae.load  # noqa: F841 - the API under test is psae.save/psae.load
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(Normalizer(), SparseAutoencoder(n_components=8, epochs=4,
                                                          random_state=0, device="cpu"))
    model.fit(d["X_train"])
    psae.save(model, tmp_path / "pipe")
    assert main(["encode", "--model", str(tmp_path / "pipe"), "--data", str(npz), "--out",
                 str(tmp_path / "a.npy")]) == 0
    # the CLI reads float32, like this (float64 input would take the exact float64 path)
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"),
                               model.transform(d["X_test"].astype(np.float32)), atol=1e-6)
    capsys.readouterr()
    model[-1].save(tmp_path / "bare")  # the autoencoder alone: no preprocessing
    assert main(["encode", "--model", str(tmp_path / "bare"), "--data", str(npz), "--out",
                 str(tmp_path / "b.npy")]) == 0
    assert "carries no preprocessing" in capsys.readouterr().err


# 4. files a user can share -------------------------------------------------------------------
def test_every_written_file_gets_the_umask_mode(npz, tmp_path):
    out = tmp_path / "m"
    assert run("fit", "--data", str(npz), "--out", str(out), *FIT, umask="0o022")[0] == 0
    for ext in ("npy", "npz", "csv"):
        assert run("encode", "--model", str(out), "--data", str(npz), "--out",
                   str(tmp_path / f"codes.{ext}"), umask="0o022")[0] == 0
    assert run("evaluate", "--model", str(out), "--data", str(npz), "--json",
               str(tmp_path / "eval.json"), umask="0o022")[0] == 0
    rep = tmp_path / "rep"
    code, _, err = run("reproduce", "--quick", "--models", "rae", "--quiet", "--out", str(rep),
                       umask="0o022")
    assert code == 0, err
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 15
    bad = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files
           if p.stat().st_mode & 0o777 != 0o644 and p.name != "digits.npz"}
    assert not bad
    dirs = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert all(p.stat().st_mode & 0o777 == 0o755 for p in dirs), \
        {str(p): oct(p.stat().st_mode & 0o777) for p in dirs}


# 5. leftovers of a killed save ---------------------------------------------------------------
KILLED_SAVE = """
import os, signal, sys
import numpy as np
import psae.persistence as P
from psae import SparseAutoencoder
m = SparseAutoencoder(n_components=400, epochs=1, penalty="none", device="cpu", random_state=0)
m.fit(np.random.default_rng(0).uniform(size=(256, 2000)).astype(np.float32))
P._swap_in = lambda tmp, target: os.kill(os.getpid(), signal.SIGKILL)  # killed mid-save
m.save(sys.argv[1])
"""


def test_a_killed_save_leaves_temporaries_that_the_next_save_removes(tmp_path, digits):
    big = tmp_path / "big"
    res = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(big)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".big.")]
    assert left and not big.exists()  # what the kill leaves behind ...
    # names without psae's marker are a user's, whatever they look like (issue 18, item 4)
    (tmp_path / ".big.tmp-abc123").mkdir()
    (tmp_path / ".big.old-4242").mkdir()
    SparseAutoencoder(n_components=5, epochs=4, random_state=0, device="cpu").fit(
        digits[0]).save(big)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".big.old-4242", ".big.tmp-abc123",
                                                          "big"]


# 6. a collapsed model fails ------------------------------------------------------------------
def test_a_collapsed_fit_is_a_clear_error_and_writes_nothing(npz, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["fit", "--data", str(npz), "--out", str(out), "--lr", "1e6", *FIT]) == 1
    err = capsys.readouterr().err
    assert "collapsed" in err and "learning rate" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_evaluate_reports_re_and_ca_when_s_is_undefined(cli_model, npz, tmp_path, capsys):
    dead = tmp_path / "dead"
    pipe = psae.load(cli_model)
    pipe[-1].encoder_bias_ = np.full_like(pipe[-1].encoder_bias_, -1e4)  # every code is 0
    psae.save(pipe, dead)
    assert main(["evaluate", "--model", str(dead), "--data", str(npz)]) == 0
    out = capsys.readouterr().out
    res = json.loads(out.strip().splitlines()[-1])
    assert res["S"] is None and "all-zero" in res["S_note"]
    assert np.isfinite(res["RE"]) and 0 <= res["CA"] <= 1
    assert "undefined" in out and "RE" in out and "CA" in out


# 7. messages in psae's words -----------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--device", "tpu"], "device 'tpu' is not one psae can use"),
    (["--penalty", "none", "--epochs", "0"], "epochs must be at least 1"),
])
def test_bad_options_are_said_in_psaes_words(npz, tmp_path, args, words):
    code, _, err = run("fit", "--data", str(npz), "--out", str(tmp_path / "m"), "--quiet",
                       *args)
    assert code == 2 and words in err and "Traceback" not in err and "sigma" not in err


def test_bad_data_is_said_in_psaes_words(tmp_path):
    X = np.random.default_rng(0).uniform(size=(50, 6))
    X[17, 2] = np.nan
    np.savez(tmp_path / "nan.npz", X=X)
    (tmp_path / "fake.npz").write_text("not an archive")
    for name, words in (("nan.npz", "row 17"), ("fake.npz", "no zip signature")):
        code, _, err = run("fit", "--data", str(tmp_path / name), "--out", str(tmp_path / "m"),
                           "--quiet")
        assert code == 1 and words in err, err
        assert "HistGradientBoosting" not in err and "allow_pickle" not in err
    with pytest.raises(psae.InputError, match=r"NaN .*row 17, column 2"):
        SparseAutoencoder(device="cpu").fit(X)


# 8. CSV labels -------------------------------------------------------------------------------
def _csv(path, header=True):
    X, y = load_digits(return_X_y=True)
    rows = [",".join(f"{v:g}" for v in [*x, t]) for x, t in zip(X[:400], y[:400], strict=True)]
    head = [",".join([f"p{i}" for i in range(64)] + ["label"])] if header else []
    path.write_text("\n".join(head + rows) + "\n")
    return path


def test_csv_label_column_is_found_named_and_said(tmp_path):
    csv = _csv(tmp_path / "d.csv")
    code, _, err = run("fit", "--data", str(csv), "--out", str(tmp_path / "m"), *FIT)
    assert code == 0 and "label" in err and "auto" in err
    assert psae.load(tmp_path / "m")[-1].n_features_in_ == 64
    assert run("fit", "--data", str(csv), "--out", str(tmp_path / "m2"), "--label-column",
               "label", *FIT)[0] == 0
    assert run("evaluate", "--model", str(tmp_path / "m"), "--data", str(csv))[0] == 0
    plain = _csv(tmp_path / "plain.csv", header=False)
    code, _, err = run("evaluate", "--model", str(tmp_path / "m"), "--data", str(plain))
    assert code == 1 and "--label-column" in err and "65 features" in err
    # a label column the file does not have is an option's value: exit 2, as argparse's
    for bad in ("nosuch", "70"):
        code, _, err = run("fit", "--data", str(csv), "--out", str(tmp_path / "m3"),
                           "--label-column", bad, *FIT)
        assert code == 2 and ("no column named" in err or "out of range" in err), err


# 9. silent gaps ------------------------------------------------------------------------------
def test_missing_splits_and_labels_are_said_and_options_honoured(tmp_path, cli_model, capsys):
    X, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    np.savez(tmp_path / "x.npz", X=X)
    assert main(["evaluate", "--model", str(cli_model), "--data", str(tmp_path / "xy.npz")]) == 0
    cap = capsys.readouterr()
    assert "no test split" in cap.err and "train split" in cap.out
    assert "not computed" in cap.out and json.loads(cap.out.splitlines()[-1])["CA"] is None
    assert main(["evaluate", "--model", str(cli_model), "--data", str(tmp_path / "x.npz")]) == 0
    assert "has no labels" in capsys.readouterr().out
    assert main(["encode", "--model", str(cli_model), "--data", str(tmp_path / "xy.npz"),
                 "--split", "test", "--out", str(tmp_path / "c.npy")]) == 2
    assert "no test split" in capsys.readouterr().err
    assert main(["encode", "--model", str(cli_model), "--data", str(tmp_path / "xy.npz"),
                 "--limit", "100", "--out", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (100, 12)
    with pytest.raises(SystemExit):
        main(["fit", "--data", str(tmp_path / "xy.npz"), "--limit", "0", "--out", "x"])


# 10. --help shows every default --------------------------------------------------------------
def test_fit_help_shows_every_default():
    code, out, _ = run("fit", "--help")
    text = " ".join(out.split("options:", 1)[1].split())  # the help body, not the usage line
    for flag, default in (("--lam", "10.0"), ("--beta", "l1 0.003, kl 0.01"), ("--rho", "0.05"),
                          ("--sigmas", "1.0,0.5,0.2,0.1"), ("--lr", "None"),
                          ("--epochs", "100"), ("--batch-size", "auto"), ("--limit", "all"),
                          ("--label-column", "auto")):
        # this option's own help: up to the next option (not its own alias after a comma)
        after = re.split(r"(?<!,) --(?=[a-z])", text.split(flag, 1)[1])[0] if flag in text \
            else ""
        assert f"default: {default}" in after or f"(default: per penalty, {default}" in after, \
            (flag, after[:300])
