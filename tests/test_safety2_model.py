"""Findings about what a model takes in: a loaded model is checked like a new one, seeds are
range-checked, a layer too large for memory is refused before it is allocated, options without
effect on the chosen model are errors, and scikit-learn's checks pass at the defaults."""

import hashlib
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import check_estimator

import psae
from psae import ModelFormatError, Normalizer, ParameterError, SparseAutoencoder
from psae import params as params_module
from psae.cli import main
from psae.training import fit as fit_module

SMALL = {"n_components": 6, "epochs": 4, "random_state": 0, "device": "cpu"}
FIT = ["--n-components", "6", "--epochs", "4", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def saved(digits, tmp_path_factory):
    """Model directories to copy and tamper with: a sql0 pipeline and a jumprelu autoencoder."""
    root = tmp_path_factory.mktemp("saved")
    X = load_digits().data[:400]
    nz = Normalizer().fit(X)
    sae = SparseAutoencoder(**SMALL).fit(nz.transform(X))
    psae.save(psae.bundle.Pipeline([("normalizer", nz), ("autoencoder", sae)]), root / "sql0")
    SparseAutoencoder(penalty="jumprelu", **SMALL).fit(digits[0]).save(root / "jumprelu")
    return root


def copy_of(saved, name, tmp_path):
    import shutil

    return shutil.copytree(saved / name, tmp_path / name)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tamper(model_dir, weights=None, normalizer=None, config=None):
    """Rewrite a model directory's tensors and config as an attacker or a bad disk would,
    checksums fixed up so that only the new checks can tell."""
    cfg_path = model_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if weights is not None:
        arrays = load_file(model_dir / "model.safetensors")
        weights(arrays)
        save_file(arrays, model_dir / "model.safetensors")
        cfg["weights_sha256"] = sha256(model_dir / "model.safetensors")
    if normalizer is not None:
        arrays = load_file(model_dir / "normalizer.safetensors")
        normalizer(arrays)
        save_file(arrays, model_dir / "normalizer.safetensors")
        cfg["normalizer"]["sha256"] = sha256(model_dir / "normalizer.safetensors")
    if config is not None:
        config(cfg)
    cfg_path.write_text(json.dumps(cfg))
    return model_dir


def cli_error(capsys, argv, status: int = 1) -> str:
    """The one line psae prints for an error (exit status 1; 2 for an unusable option)."""
    assert main(argv) == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


# 1. loading checks what it loads ------------------------------------------------------------
@pytest.mark.parametrize("tensor, value", [("encoder.weight", np.nan),
                                           ("decoder.bias", np.inf)])
def test_load_refuses_non_finite_weights(saved, tmp_path, npz, capsys, tensor, value):
    def poison(arrays):
        arrays[tensor] = arrays[tensor].copy()
        arrays[tensor].flat[1] = value

    d = tamper(copy_of(saved, "sql0", tmp_path), weights=poison)
    with pytest.raises(ModelFormatError, match=rf"model\.safetensors: tensor '{tensor}' holds 1 "
                                               "NaN or infinite"):
        psae.load(d)
    with pytest.raises(ModelFormatError, match=tensor):
        SparseAutoencoder.load(d, drop_preprocessing=True)
    err = cli_error(capsys, ["encode", "--model", str(d), "--data", str(npz),
                             "--out", str(tmp_path / "c.npy")])
    assert "model.safetensors" in err and tensor in err and not (tmp_path / "c.npy").exists()


@pytest.mark.parametrize("tensor, value, match", [
    ("mean", np.nan, "'mean' holds 1 value"), ("scale", 0.0, "'scale' holds 1 value"),
    ("scale", -np.inf, "'scale' holds 1 value.*not finite and > 0")])
def test_load_refuses_a_broken_normalizer(saved, tmp_path, tensor, value, match):
    def poison(arrays):
        arrays[tensor] = arrays[tensor].copy()
        arrays[tensor][3] = value

    d = tamper(copy_of(saved, "sql0", tmp_path), normalizer=poison)
    with pytest.raises(ModelFormatError, match=rf"normalizer\.safetensors: tensor {match}"):
        psae.load(d)


def test_load_refuses_a_penalty_switched_over_weights_of_another(saved, tmp_path, digits):
    # sql0 weights named jumprelu: today all-zero codes; the threshold tensor is missing
    d = tamper(copy_of(saved, "sql0", tmp_path),
               config=lambda c: c["params"].update(penalty="jumprelu"))
    with pytest.raises(ModelFormatError, match=r"model\.safetensors: the tensors do not match.*"
                                               r"penalty='jumprelu'.*lacks 'code\.log_thresh"):
        psae.load(d)
    # and the other way: a JumpReLU's threshold left over under sql0
    d = tamper(copy_of(saved, "jumprelu", tmp_path),
               config=lambda c: c["params"].update(penalty="sql0"))
    with pytest.raises(ModelFormatError, match=r"holds 'code\.log_threshold' it does not use"):
        SparseAutoencoder.load(d)
    # a threshold of the wrong shape or kind
    d2 = tmp_path / "jr2"
    tamper(copy_of(saved, "jumprelu", tmp_path / "x"), weights=lambda a: a.update(
        {"code.log_threshold": a["code.log_threshold"][:3]})).rename(d2)
    with pytest.raises(ModelFormatError, match=r"'code\.log_threshold' has shape \(3,\)"):
        SparseAutoencoder.load(d2)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["params"].update(n_components="6"), r"n_components must be an integer"),
    (lambda c: c.pop("params"), r"field 'params' must be an object, got missing"),
    (lambda c: c.update(params=[1, 2]), r"field 'params' must be an object"),
    (lambda c: c["params"].update(lam=-1.0), r"'params'.*lam must be a number >= 0"),
    (lambda c: c["params"].update(penalty="nope"), r"unknown penalty 'nope'"),
    (lambda c: c["params"].update(random_state=-1), r"random_state"),
    (lambda c: c["params"].update(surprise=1), r"does not know: surprise"),
    (lambda c: c.update(n_features_in="64"), r"field 'n_features_in' must be an integer"),
    (lambda c: c.pop("n_features_in"), r"'n_features_in' must be an integer, got missing"),
    (lambda c: c.update(history="long"), r"field 'history' must be a list"),
    (lambda c: c.update(history=[1, 2]), r"field 'history' must be a list of objects"),
    (lambda c: c.update(precision="fp8"), r"field 'precision' must be 'fp32' or 'bf16'"),
    (lambda c: c.update(penalty_weight="x"), r"field 'penalty_weight' must be a number"),
    (lambda c: c.update(feature_names_in=["a"]), r"'feature_names_in' must be 64 strings"),
    (lambda c: c["normalizer"]["params"].update(clip="abc"), r"clip must be a finite number"),
    (lambda c: c["normalizer"]["params"].update(low=1.0, high=0.0), r"low must be < high"),
])
def test_load_refuses_ill_typed_config_fields(saved, tmp_path, edit, match):
    d = tamper(copy_of(saved, "sql0", tmp_path), config=edit)
    with pytest.raises(ModelFormatError, match=match) as info:
        psae.load(d)
    assert "config.json" in str(info.value) or "normalizer" in str(info.value)


def test_cli_reports_a_bad_config_field_in_one_line(saved, tmp_path, npz, capsys):
    d = tamper(copy_of(saved, "sql0", tmp_path),
               config=lambda c: c["params"].update(n_components="6"))
    err = cli_error(capsys, ["evaluate", "--model", str(d), "--data", str(npz)])
    assert "config.json" in err and "n_components" in err


def test_sound_models_still_load_exactly(saved, digits):
    for name in ("sql0", "jumprelu"):
        model = psae.load(saved / name)
        sae = model[-1] if name == "sql0" else model
        assert np.isfinite(sae.transform(digits[1][:, :sae.n_features_in_])).all()


# 2. seeds -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, 1.5, "7", np.random.default_rng(0)])
def test_out_of_range_seeds_are_parameter_errors(digits, seed):
    with pytest.raises(ParameterError, match=r"integer from 0 to 2\*\*32 - 1 = 4294967295"):
        SparseAutoencoder(**{**SMALL, "random_state": seed}).fit(digits[0][:50])


def test_the_largest_seed_works(digits):
    SparseAutoencoder(**{**SMALL, "random_state": 2**32 - 1}).fit(digits[0][:50])
    SparseAutoencoder(**{**SMALL, "random_state": np.random.RandomState(3)}).fit(digits[0][:50])


@pytest.mark.parametrize("seed", ["-1", "18446744073709551616"])
def test_cli_out_of_range_seed_is_one_line(npz, tmp_path, capsys, seed):
    err = cli_error(capsys, ["fit", "--data", str(npz), "--out", str(tmp_path / "m"), *FIT,
                             "--seed", seed], status=2)
    assert "--seed" in err and "4294967295" in err and not (tmp_path / "m").exists()


# 3. memory -----------------------------------------------------------------------------------
def test_available_memory_is_known_here():
    have = params_module.available_memory(torch.device("cpu"))
    assert have is None or have > 0
    assert params_module.format_bytes(1.2e12) == "1.2 TB"
    assert params_module.format_bytes(20e9) == "20 GB"


def test_a_layer_too_large_is_refused_before_it_is_allocated(digits, monkeypatch):
    monkeypatch.setattr(params_module, "available_memory", lambda device: 20 * 10**9)
    built = []
    monkeypatch.setattr(fit_module, "build",
                        lambda *a, **k: built.append(1))
    with pytest.raises(ParameterError, match=r"n_components=100000000 on 64 features needs "
                                             r"about [\d.]+ GB of cpu memory.*optimiser state.*"
                                             r"20 GB is available"):
        SparseAutoencoder(n_components=100_000_000, device="cpu").fit(digits[0])
    assert not built


def test_a_layer_larger_than_any_machine_is_refused(digits):
    with pytest.raises(ParameterError, match=r"needs about [\d.]+ (TB|PB)"):
        SparseAutoencoder(n_components=10**11, device="cpu").fit(digits[0])


def test_cli_too_large_a_layer_is_one_line(npz, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(params_module, "available_memory", lambda device: 20 * 10**9)
    err = cli_error(capsys, ["fit", "--data", str(npz), "--out", str(tmp_path / "m"),
                             "--n-components", "100000000", "--quiet", "--device", "cpu"],
                    status=2)
    assert "needs about" in err and "20 GB is available" in err


def test_a_memory_limit_is_respected_in_a_fresh_process(tmp_path):
    """Under ``ulimit -v`` the layer is refused in psae's words, not in torch's allocator."""
    script = textwrap.dedent("""
        import resource, sys
        import numpy as np
        import psae
        size = next(int(ln.split()[1]) * 1024 for ln in open("/proc/self/status")
                    if ln.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 2**30, resource.RLIM_INFINITY))
        X = np.random.RandomState(0).rand(200, 64).astype(np.float32)
        try:
            psae.SparseAutoencoder(n_components=3_000_000, device="cpu", threads=1).fit(X)
        except psae.ParameterError as e:
            print("refused:", e)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "refused:" in res.stdout and "is available" in res.stdout


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB"),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"),
    MemoryError("Unable to allocate 1.0 TiB for an array"),
])
def test_out_of_memory_during_fit_is_a_psae_error(digits, monkeypatch, error):
    def boom(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(psae.training.trainer.Trainer, "fit", boom)
    with pytest.raises(ParameterError, match=r"ran out of memory training n_components=6 on 64 "
                                             r"features.*Lower n_components or batch_size"):
        SparseAutoencoder(**SMALL).fit(digits[0])


def test_other_runtime_errors_keep_their_traceback(digits, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(psae.training.trainer.Trainer, "fit", boom)
    with pytest.raises(RuntimeError, match="a bug") as info:
        SparseAutoencoder(**SMALL).fit(digits[0])
    assert not isinstance(info.value, psae.PsaeError)


# 4. options without effect -------------------------------------------------------------------
@pytest.mark.parametrize("params, match", [
    ({"penalty": "l1", "sigmas": (1.0, 0.5)}, r"sigmas=\(1.0, 0.5\) has no effect with "
                                              r"penalty='l1'; it applies to: sql0, l0"),
    ({"penalty": "topk", "lam": 3.0}, r"lam=3.0 has no effect.*applies to: sql0, l0"),
    ({"penalty": "sql0", "beta": 0.1}, r"beta=0.1 .*applies to: l1, kl, jumprelu, sqjumprelu"),
    ({"penalty": "none", "rho": 0.1}, r"rho=0.1 has no effect with penalty='none'.*: kl"),
    ({"penalty": "l1", "bandwidth": 0.1}, r"bandwidth=0.1 .*: jumprelu, sqjumprelu"),
    ({"penalty": "batchtopk", "encode_k": 3}, r"encode_k=3 .*applies to: topk"),
])
def test_options_without_effect_are_errors(digits, params, match):
    with pytest.raises(ParameterError, match=match):
        SparseAutoencoder(**{**SMALL, **params}).fit(digits[0])


def test_defaults_do_not_trip_it_and_sklearn_tools_work(digits):
    X = digits[0][:300]
    # the default written out (a list, as a JSON config has it) is still the default
    SparseAutoencoder(**SMALL, penalty="l1", sigmas=[1.0, 0.5, 0.2, 0.1], lam=10).fit(X)
    est = SparseAutoencoder(**SMALL, penalty="topk")
    assert clone(est).get_params() == est.get_params()
    est.set_params(penalty="sql0", lam=3.0)  # stored now, checked by fit
    grid = GridSearchCV(SparseAutoencoder(**SMALL), cv=2, error_score="raise", param_grid=[
        {"penalty": ["sql0"], "lam": [3.0, 30.0]}, {"penalty": ["l1"], "beta": [1e-3]},
        {"penalty": ["topk"], "k": [2]}]).fit(X)
    assert len(grid.cv_results_["params"]) == 4
    with pytest.raises(ParameterError, match="lam=3.0 has no effect"):
        GridSearchCV(SparseAutoencoder(**SMALL), cv=2, error_score="raise",
                     param_grid={"penalty": ["topk"], "lam": [3.0]}).fit(X)


@pytest.mark.parametrize("extra, option", [
    (["--penalty", "l1", "--sigmas", "1,0.5"], "--sigmas"),
    (["--penalty", "topk", "--lam", "3"], "--lam"),
    (["--penalty", "topk", "--lam", "10"], "--lam"),  # asked for, even at the default
    (["--sigmas", "1,0.5", "--beta", "0.1"], "--beta"),  # sql0 by default
    (["--penalty", "sql0", "--k", "3"], "--k"),
])
def test_cli_options_without_effect_are_one_line(npz, tmp_path, capsys, extra, option):
    err = cli_error(capsys, ["fit", "--data", str(npz), "--out", str(tmp_path / "m"), *FIT,
                             *extra], status=2)
    assert f"{option} has no effect with --penalty" in err and "applies to" in err
    assert not (tmp_path / "m").exists()


# 5. scikit-learn's checks at the defaults ---------------------------------------------------
@pytest.mark.parametrize("est", [SparseAutoencoder(),
                                 SparseAutoencoder(n_components=3, random_state=0)],
                         ids=["default", "three-units"])
def test_check_estimator_passes_at_the_defaults(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed
    assert len(results) > 40


def test_a_collapsed_fit_restarts_and_says_so():
    X = np.random.RandomState(0).normal(loc=100, size=(80, 2))  # scikit-learn's check data
    est = SparseAutoencoder(n_components=3, random_state=0, device="cpu")
    # 80 rows: a batch of 80, so the step size is 1e-2 * sqrt(80 / 128), then a tenth of it
    with pytest.warns(ConvergenceWarning, match=r"collapsed.*restarting.*learning rate 0\.000791"):
        est.fit(X)
    assert est.history_[0]["restart"] >= 1 and len(est.history_) == 100
    H = est.transform(X)
    assert np.ptp(H, axis=0).max() > 1e-6
    # repeatable, restart included
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(clone(est).fit(X).transform(X), H)


def test_a_sound_fit_never_restarts(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = SparseAutoencoder(**{**SMALL, "epochs": 8}).fit(digits[0])
    assert not any("restart" in h for h in est.history_)


def test_a_hopeless_fit_still_fails_after_its_restarts(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(psae.TrainingCollapsedError,
                           match=r"collapsed again after 2 restart\(s\).*learning rate"):
            SparseAutoencoder(**{**SMALL, "learning_rate": 1e6}).fit(digits[0])


@pytest.mark.parametrize("argv, words", [
    (["--tol", "0.3"], "--tol has no effect without --early-stopping"),
    (["--validation-fraction", "0.5"], "--validation-fraction has no effect without"),
    (["--n-iter-no-change", "7"], "--n-iter-no-change has no effect without"),
    (["--solver", "lbfgs", "--batch-size", "16"], "--batch-size has no effect without --solver"),
])
def test_cli_options_no_setting_reads_are_refused(npz, tmp_path, capsys, argv, words):
    """They changed nothing, silently, where --max-epochs and --raw-codes were refused."""
    err = cli_error(capsys, ["fit", "--data", str(npz), "--out", str(tmp_path / "m"), *FIT,
                             *argv], status=2)
    assert words in err and not (tmp_path / "m").exists()


def test_a_colour_grey_mismatch_hints_at_grayscale():
    from psae.cli.data import check_features

    X = np.zeros((2, 432), np.float32)
    with pytest.raises(psae.InputError, match="trained with --grayscale: add it"):
        check_features("m", 144, X, "imgs", {"grayscale": True})
    with pytest.raises(psae.InputError, match="Leave out --grayscale"):
        check_features("m", 432, X[:, :144], "imgs", {})
