"""Data larger than memory: fit and transform stream a memmap in chunks.

The test runs in a subprocess and watches its anonymous resident memory (RssAnon: what the
process allocates, not the file pages the kernel maps in and can drop), so the cap is real.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np

from psae.streaming import open_shards

SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np
    from psae import SparseAutoencoder

    def anon_mb():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024

    path, out_path, n, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    model = SparseAutoencoder(n_components=16, penalty="none", epochs=4, batch_size=256,
                              random_state=0, device="cpu")
    model.fit(X[:512])  # warm up torch's allocator and kernels before measuring
    base, peak, stop = anon_mb(), [0.0], [False]
    def watch():
        while not stop[0]:
            peak[0] = max(peak[0], anon_mb())
            time.sleep(0.005)
    t = threading.Thread(target=watch); t.start()
    model.fit(X)
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=(n, 16))
    model.transform(X, out=out)
    out.flush()
    stop[0] = True; t.join()
    print(json.dumps({"base_mb": base, "peak_mb": peak[0], "epochs": model.n_iter_,
                      "recon": [h["reconstruction"] for h in model.history_]}))
""")


def test_fit_and_transform_stream_a_memmap_larger_than_the_cap(tmp_path):
    n, d = 300_000, 256  # 293 MiB of float32
    path = tmp_path / "X.f32"
    rng = np.random.default_rng(0)
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
    for s in range(0, n, 50_000):
        X[s:s + 50_000] = rng.uniform(0.1, 0.9, size=(50_000, d)).astype(np.float32)
    X.flush()
    del X
    size_mb = path.stat().st_size / 2**20
    cap_mb = size_mb / 4  # the data set is 4x the memory the run may add
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "H.npy"),
                          str(n), str(d)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["epochs"] == 4 and out["recon"][-1] < out["recon"][0]
    grown = out["peak_mb"] - out["base_mb"]
    assert grown < cap_mb, f"anonymous memory grew {grown:.0f} MiB, cap {cap_mb:.0f} MiB"
    H = np.load(tmp_path / "H.npy", mmap_mode="r")
    assert H.shape == (n, 16) and np.isfinite(H[-1000:]).all() and H[-1].any()


def test_npy_shards_stream_like_one_array(tmp_path):
    rng = np.random.default_rng(1)
    parts = [rng.uniform(size=(k, 5)).astype(np.float32) for k in (7, 11, 3)]
    for i, p in enumerate(parts):
        np.save(tmp_path / f"part{i:02d}.npy", p)
    A = open_shards(tmp_path)
    whole = np.concatenate(parts)
    assert A.shape == (21, 5)
    np.testing.assert_array_equal(A[5:20], whole[5:20])
    np.testing.assert_array_equal(A[0:21], whole)
    rows = np.array([20, 0, 7, 6, 17, -1, 7])  # across shards, unsorted, negative, repeated
    np.testing.assert_array_equal(A[rows], whole[rows])

    from psae import SparseAutoencoder

    # a target L0 calibrates its inference threshold on a sample of rows (it crashed here,
    # after every epoch had run)
    t = SparseAutoencoder(n_components=4, epochs=4, batch_size=4, random_state=0,
                          device="cpu", target_l0=2).fit(A)
    assert t.inference_threshold_ is not None
    np.testing.assert_array_equal(t.transform(A), t.transform(whole))

    m = SparseAutoencoder(n_components=3, epochs=4, batch_size=4, random_state=0, device="cpu")
    H = m.fit(A).transform(A)
    np.testing.assert_allclose(H, m.transform(whole), rtol=1e-6)


def test_bad_shards(tmp_path):
    import pytest

    np.save(tmp_path / "a.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="number of features"):
        open_shards(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        open_shards(tmp_path / "a.npy")


def test_streamed_sample_spans_the_whole_array(tmp_path):
    """The rows the pre-encoder bias is centred on and dead units are resampled from come from
    the whole memmap: one random chunk's rows were one class's when rows are stored class by
    class (here the first half zeros, the second ones), so the bias was one class's mean."""
    import torch

    from psae.training.batches import StreamedBatches

    path = tmp_path / "sorted.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(4000, 3))
    X[2000:] = 1.0
    X.flush()
    batches = StreamedBatches(np.load(path, mmap_mode="r"), 50, torch.device("cpu"),
                              chunk_rows=500)
    rows = batches.sample(65536, torch.Generator().manual_seed(0))
    assert 400 <= rows.shape[0] <= 500  # at most one chunk's worth, deduplicated
    assert 0.4 < float(rows[:, 0].mean()) < 0.6


def test_each_rank_reads_only_its_share_of_a_streamed_chunk():
    """Under data parallelism a rank reads only its own rows of each chunk, and those are the
    rows it takes of the one-process batch (``r, r + world, ...``): ``world`` ranks read the
    data once between them, not ``world`` times, and step as one process would."""
    import torch

    from psae.distributed import Comm
    from psae.training.batches import StreamedBatches

    X = np.arange(1037 * 3, dtype=np.float32).reshape(1037, 3)

    class Counted:  # an array that counts the rows read from it
        shape, read = X.shape, 0

        def __getitem__(self, key):
            rows = X[key]
            Counted.read += len(rows)
            return rows

    def batches(comm):
        return list(StreamedBatches(Counted(), 64, torch.device("cpu"), chunk_rows=300,
                                    comm=comm).epoch(torch.Generator().manual_seed(5)))

    whole = batches(Comm())
    assert len(whole) == -(-1037 // 64) and Counted.read == 1037
    Counted.read = 0
    for rank in range(3):
        mine = batches(Comm(rank, 3))
        assert len(mine) == len(whole)
        assert all(torch.equal(a, b[rank::3]) for a, b in zip(mine, whole, strict=True))
    assert Counted.read == 1037  # every row once over the three ranks


def test_streamed_batches_mix_a_file_stored_class_by_class():
    """Each batch draws its rows from blocks across the whole file: contiguous chunks gave a
    file stored class by class batches of one class. Every row still comes once an epoch."""
    import torch

    from psae.training.batches import StreamedBatches

    y = np.repeat(np.arange(10), 1000)
    X = np.repeat(y[:, None], 2, axis=1).astype(np.float32)
    batches = StreamedBatches(X, 50, torch.device("cpu"), chunk_rows=500)
    epoch = list(batches.epoch(torch.Generator().manual_seed(0)))
    assert len(epoch) == len(batches) == 200
    assert sorted(torch.cat(epoch)[:, 0].tolist()) == sorted(y.tolist())
    classes = [len(set(b[:, 0].tolist())) for b in epoch]
    assert np.mean(classes) > 4  # contiguous chunks of 500 rows: 1.0


def test_batch_counts_leave_out_the_batch_every_rank_skips():
    """``len(batches)`` (the controller's ramp, the tracker's period) is what an epoch yields:
    65 rows in batches of 64 over 2 ranks leave a 1-row batch that both ranks skip. Complex
    data is refused up front (it lost its imaginary part, or failed mid-fit)."""
    import pytest
    import torch

    from psae.distributed import Comm
    from psae.errors import InputError
    from psae.streaming import check_streamed
    from psae.training.batches import StreamedBatches, TensorBatches

    X = np.zeros((65, 2), np.float32)
    for world in (1, 2):
        for b in (TensorBatches(torch.from_numpy(X), 64, Comm(0, world)),
                  StreamedBatches(X, 64, torch.device("cpu"), comm=Comm(0, world))):
            assert len(b) == len(list(b.epoch(torch.Generator().manual_seed(0)))) == 3 - world
    with pytest.raises(InputError, match="real numbers"):
        check_streamed(np.zeros((3, 2), np.complex64))
