"""Two gloo processes on the CPU train the same model as one process with the same global batch.

Tolerance: float32 sums in a different order, amplified by Adam's normalisation, make the two
runs drift slightly: per-epoch losses agree within 0.5 % and weights within 5e-3 after 4 epochs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import psae
from psae import SparseAutoencoder
from psae.distributed import Comm
from psae.errors import ParameterError

ARGS = ["--n-components", "20", "--epochs", "4", "--lr", "1e-3", "--batch-size", "64",
        "--device", "cpu", "--quiet"]


def torchrun(nproc: int, *args) -> subprocess.CompletedProcess:
    """``args`` under torchrun on ``nproc`` gloo processes of one thread each; it must exit 0."""
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", *map(str, args)], capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def rank_outputs(tmp_path, nproc: int) -> list[dict]:
    """What each rank's script wrote to ``tmp_path/<rank>.json``."""
    return [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(nproc)]


def test_two_process_ddp_matches_single_process(tmp_path, digits):
    data = tmp_path / "d.npz"
    np.savez(data, X_train=digits[0], y_train=digits[2])
    ddp = torchrun(2, "-m", "psae", "fit", "--data", data, "--out", tmp_path / "ddp",
                   "--no-normalize", *ARGS)
    # only rank 0 writes: one summary line, one model dir
    summaries = [ln for ln in ddp.stdout.splitlines() if ln.startswith("{")]
    assert len(summaries) == 1 and json.loads(summaries[0])["epochs"] == 4
    single = subprocess.run(
        [sys.executable, "-m", "psae", "fit", "--data", str(data),
         "--out", str(tmp_path / "one"), "--no-normalize", *ARGS],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = psae.load(tmp_path / "ddp"), psae.load(tmp_path / "one")  # --no-normalize: bare
    la = np.array([h["loss"] for h in a.history_])
    lb = np.array([h["loss"] for h in b.history_])
    np.testing.assert_allclose(la, lb, rtol=5e-3)
    # GNC schedule behaves as in one process: same stages, same sigmas
    assert [h["sigma"] for h in a.history_] == [h["sigma"] for h in b.history_]
    for name in ("encoder_weight_", "encoder_bias_", "decoder_weight_", "decoder_bias_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=5e-3)
    # and the runs really trained: far from their shared initialisation
    init = SparseAutoencoder(n_components=20, epochs=4, random_state=0)
    assert la[-1] != la[0] and not np.allclose(a.encoder_weight_, 0)
    del init


SCRIPT = """
import json, sys
import numpy as np
from psae import SparseAutoencoder
from psae.distributed import process_group

X = np.load(sys.argv[1])["X_train"]
model = SparseAutoencoder(n_components=8, epochs=4, batch_size=64, device="cpu", verbose=True)
with process_group("cpu") as comm:
    model.fit(X)
    line = json.dumps({"rank": comm.rank, "world": comm.world,
                       "verbose": model.get_params()["verbose"],
                       "random_state": model.get_params()["random_state"],
                       "W1": float(np.abs(model.encoder_weight_).sum())})
    # one write of line and newline: print() writes them apart, and the two ranks share a pipe
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()
"""


def test_public_fit_trains_data_parallel_and_leaves_the_users_options_alone(tmp_path, digits):
    """``fit`` inside ``process_group()`` is the whole data-parallel API: every rank ends with
    the same weights (the seed is shared when none is given), and no parameter is changed."""
    data = tmp_path / "d.npz"
    np.savez(data, X_train=digits[0])
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    res = torchrun(2, script, data)
    rows = [json.loads(ln) for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert sorted(r["rank"] for r in rows) == [0, 1] and {r["world"] for r in rows} == {2}
    assert all(r["verbose"] is True and r["random_state"] is None for r in rows)
    assert rows[0]["W1"] == rows[1]["W1"]


AGREE = """
import json, sys
import numpy as np
from psae import SparseAutoencoder
from psae.distributed import process_group

X = np.load(sys.argv[1])["X_train"]
out = {}
with process_group("cpu") as comm:
    for name, kw in json.loads(sys.argv[2]).items():
        m = SparseAutoencoder(**{"n_components": 16, "epochs": 6, "batch_size": 32,
                                 "device": "cpu", "random_state": 0, "threads": 1, **kw})
        try:
            m.fit(X)
        except Exception as e:
            out[name] = {"error": str(e)}
            continue
        out[name] = {"W1": m.encoder_weight_.tolist(), "W2": m.decoder_weight_.tolist(),
                     "weight": m.penalty_weight_,
                     "l0": [h.get("l0") for h in m.history_],
                     "resampled": [h.get("resampled") for h in m.history_],
                     "code": {k: np.asarray(v).tolist() for k, v in m.code_state_.items()}}
    with open(f"{sys.argv[3]}/{comm.rank}.json", "w") as f:  # large: a shared pipe mixes them
        json.dump(out, f)
"""


def test_ranks_agree_on_what_each_sees_only_a_share_of(tmp_path, digits):
    """What a rank tracks from its share of each batch is the global batch's: the dead units
    that resampling replaces, the L0 the controller steers by (and the stopping rule judges
    on target), BatchTopK's inference threshold. Each rank's own share left the ranks with
    different weights (resampling), knobs and thresholds; a batch smaller than the world was
    an AttributeError."""
    data = tmp_path / "d.npz"
    np.savez(data, X_train=digits[0][:400])
    script = tmp_path / "agree.py"
    script.write_text(AGREE)
    cases = {"resample": {"penalty": "l1", "encoder_activation": "relu", "beta": 0.3,
                          "dead_window": 60, "revive": "resample"},
             "steered": {"target_l0": 4, "early_stopping": True},
             "batchtopk": {"penalty": "batchtopk", "k": 4},
             "tiny_batch": {"batch_size": 1}}
    torchrun(2, script, data, json.dumps(cases), tmp_path)
    a, b = rank_outputs(tmp_path, 2)
    assert any(n for n in a["resample"]["resampled"] if n)  # it did resample
    assert a["steered"]["weight"] is not None and a["batchtopk"]["code"]["threshold"]
    for name in ("resample", "steered", "batchtopk"):
        assert a[name] == b[name], name  # bit for bit
    assert "batch_size=1" in a["tiny_batch"]["error"] and a["tiny_batch"] == b["tiny_batch"]


THREE = """
import json, sys, warnings
import numpy as np
from psae import SparseAutoencoder
from psae.distributed import process_group

warnings.simplefilter("error")  # an uneven split would warn
X = np.load(sys.argv[1])["X_train"]
with process_group("cpu") as comm:
    m = SparseAutoencoder(n_components=8, epochs=4, device="cpu", random_state=0, threads=1)
    m.fit(X)
    with open(f"{sys.argv[2]}/{comm.rank}.json", "w") as f:
        json.dump({"batch": m.batch_size_, "W1": float(np.abs(m.encoder_weight_).sum())}, f)
"""


def test_auto_batch_gives_three_ranks_equal_shares(tmp_path, digits):
    """``batch_size="auto"`` is a multiple of the world: 128 rows over 3 ranks gave shares of
    43, 43 and 42 rows whose gradient means DDP weighted alike, without the warning an
    explicit uneven batch gets."""
    data = tmp_path / "d.npz"
    np.savez(data, X_train=digits[0][:300])
    script = tmp_path / "three.py"
    script.write_text(THREE)
    torchrun(3, script, data, tmp_path)
    rows = rank_outputs(tmp_path, 3)
    assert [r["batch"] for r in rows] == [129] * 3
    assert len({r["W1"] for r in rows}) == 1


def test_batch_size_auto_is_a_multiple_of_the_world():
    assert Comm().batch_size("auto", 1000) == 128
    assert Comm().batch_size("auto", 20000) == 256
    assert Comm(0, 3).batch_size("auto", 1000) == 129
    assert Comm(0, 6).batch_size("auto", 30000) == 258
    assert Comm(0, 3).batch_size(100, 1000) == 100  # the user's own number is kept (and warned)
    assert Comm(0, 3).batch_size("auto", 50) == 48  # the rows' largest multiple of 3
    assert Comm(0, 3).batch_size("auto", 128) == 126
    assert Comm(0, 3).batch_size("auto", 2) == 2  # fewer rows than ranks: refused by fit
    assert Comm().batch_size("auto", 50) == 50  # never more than the rows


def test_a_cpu_model_under_nccl_is_refused_before_training(monkeypatch, digits):
    """``process_group()`` picks NCCL wherever CUDA is; a model fitted with device="cpu"
    inside it failed at its first all-reduce in NCCL's words. Now fit names the mismatch."""
    monkeypatch.setattr(Comm, "current", classmethod(lambda cls: cls(0, 2, "nccl")))
    model = SparseAutoencoder(n_components=4, epochs=4, device="cpu", batch_size=64)
    with pytest.raises(ParameterError, match=r"NCCL.*process_group\('cpu'\)"):
        model.fit(digits[0][:100])
    assert not hasattr(model, "encoder_weight_")
    Comm(0, 2, "gloo").check_device(torch.device("cpu"))
    Comm(0, 2, "nccl").check_device(torch.device("cuda"))  # fine: no tensor is touched


INPUTS = """
import json, sys
import numpy as np
import psae.params as P
from psae import SparseAutoencoder
from psae.distributed import process_group

X = np.load(sys.argv[1])["X_train"]
out = {}
with process_group("cpu") as comm:
    r = comm.rank
    nan = X.copy()
    if r == 1:
        nan[3, 2] = np.nan
    state, act = P.training_memory(X.shape[1], 8, 32)
    cases = {"shard": (X[r::2], {}), "rows": (X[: 200 + 7 * r], {}), "nan": (nan, {}),
             "random_state": (X, {"random_state": np.random.RandomState(r)}),
             "memory": (X.astype(np.float64), {})}
    for name, (data, kw) in cases.items():
        if name == "memory":  # room for one and a half ranks
            P.available_memory = lambda device: int(1.5 * (state + act + 4 * X.size))
        m = SparseAutoencoder(n_components=8, epochs=4, batch_size=32, device="cpu",
                              threads=1, **{"random_state": 0, **kw})
        try:
            m.fit(data)
            out[name] = {"W1": float(np.abs(m.encoder_weight_).sum())}
        except Exception as e:
            out[name] = {"error": type(e).__name__ + ": " + str(e)}
    with open(f"{sys.argv[2]}/{r}.json", "w") as f:
        json.dump(out, f)
"""


def test_ranks_refuse_different_or_bad_input_together(tmp_path, digits):
    """Each rank checked its own input: a rank handed its own shard trained on part of it and
    then hung the job at a restart the others did not take; unequal rows aborted gloo with a
    'collective mismatch'; NaN on one rank left the other waiting 30 minutes. A RandomState
    instance gave each rank its own seed (149 distinct rows of 200 in an epoch), and the
    memory check counted one rank against the whole machine."""
    data = tmp_path / "d.npz"
    np.savez(data, X_train=digits[0][:300])
    script = tmp_path / "inputs.py"
    script.write_text(INPUTS)
    torchrun(2, script, data, tmp_path)
    a, b = rank_outputs(tmp_path, 2)
    for case in ("shard", "rows"):
        assert a[case] == b[case] and "the ranks were given different X" in a[case]["error"]
    assert "200 to 207 rows" in a["rows"]["error"]
    assert "X contains NaN" in b["nan"]["error"]
    assert "another rank's X was refused" in a["nan"]["error"]
    assert "W1" in a["random_state"] and a["random_state"] == b["random_state"]
    assert "for each of 2 processes" in a["memory"]["error"] and a["memory"] == b["memory"]


def test_big_endian_rows_train_and_encode(tmp_path):
    """A big-endian .npy opened as a memmap trained every epoch, then failed in the collapse
    check after training ('byte order different from the native'), and never encoded."""
    X = np.random.default_rng(0).uniform(size=(200, 6)).astype(">f4")
    np.save(tmp_path / "x.npy", X)
    A = np.load(tmp_path / "x.npy", mmap_mode="r")
    m = SparseAutoencoder(n_components=4, epochs=4, device="cpu", random_state=0).fit(A)
    np.testing.assert_allclose(m.transform(A), m.transform(np.asarray(X, np.float32)),
                               rtol=1e-6)
