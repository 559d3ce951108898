import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from psae import Normalizer


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled digits (the OPTDIGITS test set), split and normalised as in the
    paper: (X_train, X_test, y_train, y_test), float32."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    nz = Normalizer().fit(Xtr)
    return (nz.transform(Xtr).astype(np.float32), nz.transform(Xte).astype(np.float32), ytr, yte)


@pytest.fixture(scope="session")
def npz(tmp_path_factory):
    """The bundled digits as a user's ``.npz`` (raw pixels, the same stratified split), for
    the command-line tests; read only (a test that edits data copies it first)."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte)
    return path
