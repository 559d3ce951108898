"""Saving and loading at the edges a review found: numpy-typed parameters, what a pipeline
keeps, files that are not what their names say, configs altered to absurd sizes."""

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

import psae
from psae import ModelFormatError, Normalizer, SparseAutoencoder
from psae.io import ownership


def _X(n=80, d=12):
    return np.random.default_rng(0).uniform(size=(n, d)).astype(np.float32)


def _model(**kw):
    return SparseAutoencoder(**{"n_components": 6, "penalty": "l1", "epochs": 2, "threads": 1,
                                "random_state": 0, "device": "cpu", **kw}).fit(_X())


def test_numpy_typed_parameters_save_and_load_as_python_values(tmp_path):
    m = _model(target_l0=3.0, raw_codes=np.True_, verbose=np.False_)
    m.save(tmp_path / "a")
    back = SparseAutoencoder.load(tmp_path / "a")
    assert back.raw_codes is True and back.verbose is False
    m = SparseAutoencoder(n_components=6, penalty="sql0", epochs=2, threads=1, random_state=0,
                          device="cpu", sigmas=(np.float32(1.0), np.float32(0.5))).fit(_X())
    m.save(tmp_path / "b")
    assert SparseAutoencoder.load(tmp_path / "b").sigmas == (1.0, 0.5)
    pipe = make_pipeline(Normalizer(clip=np.float32(3)), _model()).fit(_X())
    psae.save(pipe, tmp_path / "c")
    assert psae.load(tmp_path / "c")[0].clip == 3.0


@pytest.mark.filterwarnings("error::UserWarning")  # each step's output comes back as saved
def test_a_pipeline_comes_back_with_its_step_names_output_and_column_check(tmp_path):
    df = pd.DataFrame(_X(), columns=[f"c{i}" for i in range(12)])
    pipe = make_pipeline(Normalizer(), SparseAutoencoder(n_components=6, epochs=4, threads=1,
                                                         random_state=0, device="cpu"))
    pipe.set_output(transform="pandas").fit(df)
    psae.save(pipe, tmp_path / "p")
    back = psae.load(tmp_path / "p")
    assert list(back.named_steps) == ["normalizer", "sparseautoencoder"]
    out = back.transform(df)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out, pipe.transform(df))
    with pytest.raises(ValueError, match="feature names"):
        back.transform(df[df.columns[::-1]])  # the unloaded pipeline refuses it too
    one = make_pipeline(_model())
    psae.save(one, tmp_path / "one")
    assert list(psae.load(tmp_path / "one").named_steps) == ["sparseautoencoder"]


def test_a_normalizer_for_other_data_is_refused_at_load(tmp_path):
    psae.save(make_pipeline(Normalizer(), _model()).fit(_X()), tmp_path / "p")
    # graft a 10-feature normalizer into the 12-feature model, hashes fixed up
    from safetensors.numpy import save as save_bytes
    data = save_bytes({"mean": np.zeros(10), "scale": np.ones(10)})
    (tmp_path / "p" / "normalizer.safetensors").write_bytes(data)
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    import hashlib
    cfg["normalizer"]["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "p" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="normalizer takes 10 features"):
        psae.load(tmp_path / "p")


def test_files_that_are_not_regular_files_are_said_not_waited_on(tmp_path):
    d = tmp_path / "m"
    _model().save(d)
    (d / "model.safetensors").unlink()
    os.mkfifo(d / "model.safetensors")  # read blocking, this hung the loader
    with pytest.raises(ModelFormatError, match="not a regular file"):
        SparseAutoencoder.load(d)
    (d / "model.safetensors").unlink()
    (d / "model.safetensors").mkdir()
    with pytest.raises(ModelFormatError, match="model.safetensors: not a regular file"):
        SparseAutoencoder.load(d)


def test_altered_configs_are_format_errors(tmp_path):
    d = tmp_path / "m"
    _model().save(d)
    cfg_path = d / "config.json"
    good = cfg_path.read_text()
    cfg_path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFormatError, match="nested too deep"):
        SparseAutoencoder.load(d)
    assert not psae.persistence.is_model_dir(d)
    cfg = json.loads(good)
    cfg["params"]["penalty"] = "jumprelu"
    cfg["params"]["n_components"] = 10**12  # the code layer was built at this size first
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="shape"):
        SparseAutoencoder.load(d)
    cfg["params"]["n_components"] = 10**30
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="has shape"):
        SparseAutoencoder.load(d)


def test_bf16_tensors_are_a_format_error(tmp_path):
    import hashlib

    import torch
    from safetensors.torch import save as save_torch
    d = tmp_path / "m"
    _model().save(d)
    from safetensors.numpy import load as load_np
    arrays = load_np((d / "model.safetensors").read_bytes())
    data = save_torch({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in arrays.items()})
    (d / "model.safetensors").write_bytes(data)
    cfg = json.loads((d / "config.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match="unreadable safetensors"):
        SparseAutoencoder.load(d)


def test_a_manifest_left_unchanged_is_not_written_again(tmp_path, monkeypatch):
    """A save into a recorded folder whose parent psae may no longer write succeeded and
    then raised PermissionError rewriting the parent's unchanged manifest."""
    out = tmp_path / "results" / "alice"
    _model().save(out)
    parent = out.parent
    before = (parent / ownership.MANIFEST).stat().st_mtime_ns
    mode = parent.stat().st_mode
    os.chmod(parent, stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(parent, os.W_OK):  # root: make the write fail as it would for a user
            real = ownership.os.replace

            def refuse(src, dst):
                if os.path.dirname(os.fspath(dst)) == str(parent):
                    raise PermissionError(13, "Permission denied", str(dst))
                return real(src, dst)
            monkeypatch.setattr(ownership.os, "replace", refuse)
        _model(random_state=1).save(out)
    finally:
        os.chmod(parent, mode)
    assert (parent / ownership.MANIFEST).stat().st_mtime_ns == before
    np.testing.assert_array_equal(SparseAutoencoder.load(out).encoder_weight_,
                                  _model(random_state=1).encoder_weight_)


def test_set_output_on_the_autoencoder_step_only_comes_back_there_only(tmp_path):
    import warnings

    from sklearn.pipeline import Pipeline

    df = pd.DataFrame(_X(), columns=[f"c{i}" for i in range(12)])
    pipe = Pipeline([("norm", Normalizer()), ("sae", SparseAutoencoder(
        n_components=6, epochs=4, threads=1, random_state=0, device="cpu"))])
    pipe.named_steps["sae"].set_output(transform="pandas")
    pipe.fit(df)
    psae.save(pipe, tmp_path / "p")
    back = psae.load(tmp_path / "p")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the normalizer made pandas too, and the SAE warned
        out = back.transform(df)
    assert isinstance(out, pd.DataFrame) and list(back.named_steps) == ["norm", "sae"]


@pytest.mark.parametrize("device", [7, "tpu"])
def test_a_device_asked_for_at_load_is_checked_at_load(tmp_path, device):
    _model().save(tmp_path / "m")
    with pytest.raises(psae.ParameterError, match="device"):
        SparseAutoencoder.load(tmp_path / "m", device=device)
