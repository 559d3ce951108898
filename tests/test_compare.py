"""psae.reproduce.compare: the comparison from Python gives what the command gives."""

import json
from pathlib import Path

import numpy as np
import pytest

from psae import datasets
from psae.cli import main
from psae.errors import InputError, ParameterError
from psae.reproduce import Results, compare

MODELS = ["rae", "topk", "psae"]


def test_compare_gives_the_numbers_of_the_command(tmp_path):
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    assert main(["reproduce", "--quick", "--protocol", "matched", "--models", ",".join(MODELS),
                 "--quiet", "--out", str(cli_out)]) == 0
    res = compare("digits", protocol="matched", models=MODELS, quick=True, out=api_out)
    assert isinstance(res, Results) and res.report.is_file()
    cli = Results.from_folder(cli_out).rows()
    api = res.rows()
    assert len(api) == len(cli) == 1 + 2 * 2  # RAE, then 2 targets for each sparse model
    for a, b in zip(api, cli, strict=True):
        for k in ("dataset", "model", "target", "seed", "n_epochs"):
            assert a[k] == b[k], k
        for k in ("RE", "FVU", "S", "CA", "L0_mean"):
            assert a[k] == pytest.approx(b[k], rel=1e-6), (a["model"], k)
    frame = res.to_frame()
    assert list(frame["model"]) == [r["model"] for r in api]
    assert frame.loc[frame["model"] == "topk", "L0_std"].eq(0).all()  # k per sample
    with pytest.raises(TypeError):
        res.data["matched"] = []  # read-only


def test_compare_runs_on_arrays_and_resumes_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PSAE_CACHE", str(tmp_path / "cache"))
    ds = datasets.load("digits")
    X, y = ds.X_train[:600], ds.y_train[:600]
    out = tmp_path / "arrays"
    res = compare((X, y.astype(object)), protocol="matched", models=["topk"], quick=True,
                  out=out, name="digits600")  # labels of object dtype are saved as text
    assert {r["dataset"] for r in res.rows()} == {"digits600"}
    source = res.data["datasets"]["digits600"]["source"]
    assert Path(source).is_file() and Path(source).is_relative_to(tmp_path / "cache")
    assert all(r["CA"] is not None for r in res.rows())
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}
    compare((X.copy(), y.astype(object)), protocol="matched", models=["topk"], quick=True,
            out=out, name="digits600", resume=True)  # the same arrays: taken from disk
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")} == stamps
    run = json.loads((out / "run.json").read_text())
    assert "data" in run["fingerprint"]
    with pytest.raises(ParameterError, match="tuple of 3"):
        compare((X, y, y), out=tmp_path / "bad")
    with pytest.raises(InputError, match="no results.json"):
        Results.from_folder(tmp_path / "nothing")
    assert np.isfinite([r["FVU"] for r in res.rows()]).all()
