"""Encoding paths a review found wrong: bf16 codes of uncentred rows, batches that ignored the
layer's width, a score of other codes than transform's, tensors and missing values refused in
other words than elsewhere, the Normalizer's inverse, and `psae encode` on a file whose columns
are in another order than the model's."""

import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.pipeline import make_pipeline

import psae
from psae import Normalizer, SparseAutoencoder, encode
from psae.cli import main
from psae.errors import InputError, ParameterError
from psae.training import precision


@pytest.fixture(scope="module")
def offset_rows():
    """Rows far from the origin: a bf16 product of them rounds at about 10 × 2⁻⁸."""
    rng = np.random.default_rng(0)
    return (10 + 0.1 * rng.standard_normal((300, 64))).astype(np.float32)


@pytest.mark.parametrize("penalty, extra", [("jumprelu", {}), ("topk", {"k": 4})])
def test_bf16_codes_of_offset_rows_are_taken_of_centred_rows(offset_rows, penalty, extra):
    """The folded bias had the bf16 product run on the raw rows: the codes of float32 input
    were 46-49 % off the float64 ones (mean |ΔH| / mean |H|) where training's were not."""
    m = SparseAutoencoder(n_components=64, penalty=penalty, epochs=3, precision="bf16",
                          random_state=0, device="cpu", **extra).fit(offset_rows)
    H32 = m.transform(offset_rows, raw=True)
    H64 = m.transform(offset_rows.astype(np.float64), raw=True)
    assert np.abs(H32 - H64).mean() / np.abs(H64).mean() < 0.05
    np.testing.assert_allclose((H32 != 0).sum(1).mean(), (H64 != 0).sum(1).mean(), rtol=0.02)


def test_score_is_of_the_codes_transform_gives(offset_rows):
    m = SparseAutoencoder(n_components=64, penalty="topk", k=4, epochs=2, precision="bf16",
                          random_state=0, device="cpu").fit(offset_rows)
    X = offset_rows[:100]
    mine = -np.mean((X.astype(np.float64) - m.inverse_transform(m.transform(X))) ** 2)
    assert m.score(X) == pytest.approx(mine, rel=1e-6)


def test_a_wide_layer_is_encoded_in_fewer_rows_at_a_time(digits, monkeypatch):
    X = digits[0][:200]
    m = SparseAutoencoder(n_components=32, epochs=4, random_state=0, device="cpu").fit(X)
    whole = m.transform(X)
    assert encode.batch_rows(64, 32) == encode.TRANSFORM_BATCH
    assert encode.batch_rows(64, 2 ** 20) == 8
    monkeypatch.setattr(encode, "TRANSFORM_FLOATS", 32 * 7)  # 7 rows a batch
    assert encode.batch_rows(64, 32) == 3
    np.testing.assert_allclose(m.transform(X), whole, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("major, native", [(7, False), (8, True), (9, True)])
def test_auto_precision_asks_the_cuda_device_for_bf16_units(major, native):
    """torch.cuda.is_bf16_supported() says yes on a T4 (7.5), where bf16 is emulated."""
    with mock.patch("torch.cuda.get_device_capability", return_value=(major, 5)), \
            mock.patch("torch.cuda.current_device", return_value=0), \
            mock.patch.object(torch.version, "hip", None):
        assert precision.native_bf16(torch.device("cuda")) is native
        assert precision.native_bf16(torch.device("cuda:1")) is native


def test_inverse_transform_reads_tensors_as_transform_does(digits):
    m = SparseAutoencoder(n_components=16, epochs=4, random_state=0, device="cpu")
    H = m.fit(digits[0][:100]).transform(digits[0][:10])
    want = m.inverse_transform(H)
    for t in (torch.tensor(H, requires_grad=True), torch.tensor(H).bfloat16()):
        np.testing.assert_allclose(m.inverse_transform(t), want, atol=2e-2)


@pytest.mark.parametrize("make", [
    lambda X: [[*X[0, :-1], None], *X[1:].tolist()],
    lambda X: pd.DataFrame(X, columns=list("abc")).astype("Float64").mask(
        np.eye(len(X), 3, dtype=bool), pd.NA),
    lambda X: pd.DataFrame(X, columns=list("abc")).astype(object).mask(
        np.eye(len(X), 3, dtype=bool), None),
])
def test_missing_values_of_any_kind_get_psaes_message(make):
    X = np.random.default_rng(0).random((20, 3))
    m = SparseAutoencoder(n_components=4, epochs=4, random_state=0, device="cpu")
    with pytest.raises(InputError, match="contains NaN .* row 0, column"):
        m.fit(make(X))


def test_a_read_only_array_fits_without_torchs_warning():
    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="The given NumPy array is not writable")
        SparseAutoencoder(n_components=4, epochs=4, random_state=0, device="cpu").fit(X)


def test_normalizer_inverse_checks_its_input_and_keeps_float32():
    X = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    nz = Normalizer().fit(X)
    back = nz.inverse_transform(nz.transform(X))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, X, atol=1e-5)
    with pytest.raises(InputError, match="3 features, but Normalizer was fitted on 4"):
        nz.inverse_transform(X[:, :3])
    with pytest.raises(InputError, match="NaN"):
        nz.inverse_transform(np.full((2, 4), np.nan))
    nz.set_params(clip=0)
    with pytest.raises(ParameterError, match="clip must be > 0"):
        nz.transform(X)


def _encode(model, data, out, capsys):
    rc = main(["encode", "--model", str(model), "--data", str(data), "--label-column", "none",
               "--out", str(out), "--force"])
    return rc, capsys.readouterr().err


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.random((120, 5)) * [1, 10, 100, 1, 5], columns=list("abcde"))


def test_encode_takes_a_files_columns_by_name(tmp_path, frame, capsys):
    """Reversed columns were encoded as they stood, exit 0, codes off by up to 0.19."""
    pipe = make_pipeline(Normalizer(), SparseAutoencoder(n_components=8, epochs=4,
                                                         random_state=0, device="cpu"))
    want = pipe.fit(frame).transform(frame)
    psae.save(pipe, tmp_path / "m")
    frame[list("edcba")].to_csv(tmp_path / "rev.csv", index=False)
    rc, err = _encode(tmp_path / "m", tmp_path / "rev.csv", tmp_path / "H.npy", capsys)
    assert rc == 0 and "another order: taken by name" in err
    assert "valid feature names" not in err
    np.testing.assert_allclose(np.load(tmp_path / "H.npy"), want, atol=1e-5)
    frame.rename(columns={"c": "z"}).to_csv(tmp_path / "other.csv", index=False)
    rc, err = _encode(tmp_path / "m", tmp_path / "other.csv", tmp_path / "H2.npy", capsys)
    assert rc != 0 and "missing 'c'" in err and "not in the model 'z'" in err
    assert not (tmp_path / "H2.npy").exists()


def test_a_model_fitted_from_the_command_line_keeps_its_columns_names(tmp_path, frame,
                                                                       capsys):
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--label-column", "none",
                 "--out", str(tmp_path / "m"), "--n-components", "8", "--epochs", "4",
                 "--quiet", "--device", "cpu"]) == 0
    assert psae.persistence.read_model(tmp_path / "m")[0]["extra"]["columns"] == list("abcde")
    _encode(tmp_path / "m", tmp_path / "train.csv", tmp_path / "H.npy", capsys)
    frame[list("cabed")].to_csv(tmp_path / "shuffled.csv", index=False)
    rc, _ = _encode(tmp_path / "m", tmp_path / "shuffled.csv", tmp_path / "H2.npy", capsys)
    assert rc == 0
    np.testing.assert_array_equal(np.load(tmp_path / "H2.npy"), np.load(tmp_path / "H.npy"))
    np.savetxt(tmp_path / "bare.csv", frame.to_numpy(), delimiter=",")
    rc, err = _encode(tmp_path / "m", tmp_path / "bare.csv", tmp_path / "H3.npy", capsys)
    assert rc == 0 and "does not name its columns" in err


def test_a_csv_header_names_the_feature_columns(tmp_path, frame):
    frame.assign(label=np.arange(120) % 2).to_csv(tmp_path / "d.csv", index=False)
    ds = psae.datasets.load(tmp_path / "d.csv")
    assert ds.feature_names == tuple("abcde") and ds.label_column == "label"
    np.savetxt(tmp_path / "bare.csv", frame.to_numpy(), delimiter=",")
    assert psae.datasets.load(tmp_path / "bare.csv").feature_names is None


def test_a_header_with_spaces_or_a_repeated_name_reads_as_pandas_read_it(tmp_path, capsys):
    """A review found the model's own training file refused: pandas keeps ' b' after a comma
    and renames a repeated 'a' to 'a.1', where psae's reader strips and keeps them."""
    rng = np.random.default_rng(0)
    for header, cols in (("a, b, c", ["a", " b", " c"]), ("a,a,b", ["a", "a.1", "b"])):
        path = tmp_path / "x.csv"
        X = rng.random((60, 3))
        path.write_text(header + "\n" + "\n".join(",".join(f"{v:.6f}" for v in r) for r in X))
        df = pd.read_csv(path)
        assert list(df.columns) == cols
        pipe = make_pipeline(Normalizer(), SparseAutoencoder(n_components=4, epochs=4,
                                                             random_state=0, device="cpu"))
        want = pipe.fit(df).transform(df)
        psae.save(pipe, tmp_path / "m", force=True)
        rc, err = _encode(tmp_path / "m", path, tmp_path / "H.npy", capsys)
        assert rc == 0, err
        np.testing.assert_allclose(np.load(tmp_path / "H.npy"), want, atol=1e-5)


def test_a_big_endian_float64_memmap_is_encoded_in_float64(tmp_path):
    X = np.random.default_rng(0).random((50, 6))
    np.save(tmp_path / "x.npy", X.astype(">f8"))
    m = SparseAutoencoder(n_components=4, epochs=4, random_state=0, device="cpu").fit(X)
    H = m.transform(np.load(tmp_path / "x.npy", mmap_mode="r"))
    assert H.dtype == np.float64
    np.testing.assert_array_equal(H, m.transform(X))


def test_labels_of_a_pandas_series_are_named_in_the_error():
    from psae import metrics

    H = np.random.default_rng(0).random((40, 3))
    y = np.arange(40) % 2
    with pytest.raises(InputError, match="same kind of labels"):
        metrics.classification_accuracy(H, y, H, pd.Series(y.astype(str)).to_numpy(object))


def test_sparse_transform_gives_transforms_codes():
    """The CA's training codes are encoded straight into a sparse matrix where they are
    sparse: the same codes as ``transform``, and ``transform``'s array where they are not."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((700, 16)).astype(np.float32)
    top = SparseAutoencoder(n_components=40, penalty="topk", k=3, epochs=2, random_state=0,
                            device="cpu").fit(X)
    with mock.patch.object(encode, "TRANSFORM_BATCH", 128):  # several batches
        S = encode.sparse_transform(top, X)
        assert sp.issparse(S) and S.shape == (700, 40)
        np.testing.assert_array_equal(S.toarray(), top.transform(X))
        dense = SparseAutoencoder(n_components=40, penalty="none", epochs=2, random_state=0,
                                  device="cpu").fit(X)
        D = encode.sparse_transform(dense, X)
    assert isinstance(D, np.ndarray)
    np.testing.assert_array_equal(D, dense.transform(X))
