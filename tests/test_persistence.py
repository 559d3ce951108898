import json

import numpy as np
import pytest

from psae import Normalizer, SparseAutoencoder, load, save
from psae.bundle import pipeline, split
from psae.persistence import ModelFormatError


@pytest.fixture(scope="module")
def fitted(digits):
    return SparseAutoencoder(n_components=8, epochs=4, random_state=0, device="cpu").fit(digits[0])


def test_weights_are_safetensors_and_config_json(tmp_path, fitted):
    save(fitted, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json",
                                                                  "model.safetensors"]
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["params"]["n_components"] == 8
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers


def test_normalizer_round_trip(tmp_path, fitted, digits):
    raw = np.random.default_rng(0).uniform(0, 16, size=(50, 64))
    nz = Normalizer().fit(raw)
    save(pipeline(nz, fitted), tmp_path / "m")
    nz2, model = split(load(tmp_path / "m"))
    np.testing.assert_array_equal(nz2.transform(raw), nz.transform(raw))


def test_truncated_weights_fail_clearly(tmp_path, fitted):
    save(fitted, tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(ModelFormatError, match="truncated or was altered"):
        SparseAutoencoder.load(tmp_path / "m")


def test_altered_weights_fail_clearly(tmp_path, fitted):
    save(fitted, tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        SparseAutoencoder.load(tmp_path / "m")


def test_incompatible_version_and_bad_config(tmp_path, fitted):
    save(fitted, tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["format_version"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="format version 99"):
        SparseAutoencoder.load(tmp_path / "m")
    cfg_path.write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        SparseAutoencoder.load(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="no such model directory"):
        SparseAutoencoder.load(tmp_path / "absent")


def test_failed_save_keeps_existing_model(tmp_path, fitted, digits, monkeypatch):
    save(fitted, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    other = SparseAutoencoder(n_components=8, epochs=4, random_state=1, device="cpu")
    other.fit(digits[0])
    import psae.persistence as P

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(P, "_write_file", boom)
    with pytest.raises(OSError, match="disk full"):
        other.save(tmp_path / "m")
    after = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    np.testing.assert_array_equal(SparseAutoencoder.load(tmp_path / "m").transform(digits[1]),
                                  fitted.transform(digits[1]))


def test_failed_fit_leaves_model_dir_alone(tmp_path, fitted):
    save(fitted, tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError):
        SparseAutoencoder(sigmas=(0.1, 1.0), device="cpu").fit(np.ones((5, 64)))
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before


def test_save_unfitted_fails(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SparseAutoencoder().save(tmp_path / "m")


def test_saved_cuda_device_loads_on_a_cpu_machine(tmp_path, fitted, digits):
    import torch

    save(fitted, tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["params"]["device"] = "cuda"
    cfg_path.write_text(json.dumps(cfg))
    model = SparseAutoencoder.load(tmp_path / "m")
    if not torch.cuda.is_available():
        assert model.device == "auto"
    assert SparseAutoencoder.load(tmp_path / "m", device="cpu").device == "cpu"
    np.testing.assert_array_equal(model.transform(digits[1]), fitted.transform(digits[1]))
