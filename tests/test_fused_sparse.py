"""The hand-derived step of TopK, BatchTopK and both JumpReLUs against autograd (the oracle),
with and without dead units for AuxK, in float64 and in bf16, on both its paths: dense products
and products on the code's non-zeros (:mod:`psae.training.sparse_products`)."""

import pytest
import torch

from psae import sparsity
from psae.training import fused_sparse, sparse_products
from psae.training.fused_sparse import sparse_fusable, sparse_gradients
from psae.training.network import Autoencoder
from psae.training.objective import Objective
from psae.training.sparse_products import CodePattern, decode_rows, use_sparse_products
from psae.training.trainer import Trainer

D, M, N = 14, 24, 37
SETTINGS = {"topk": {"k": 4}, "batchtopk": {"k": 4}, "jumprelu": {"beta": 0.02},
            "sqjumprelu": {"beta": 0.003}}


def _model(name: str, dtype=torch.float64, seed: int = 0) -> tuple[Autoencoder, Objective]:
    obj = Objective.of(name, n_components=M, **SETTINGS[name])
    mech = sparsity.get(name)
    m = Autoencoder(D, M, mech.code(M, dict(obj.settings)), mech.decoder,
                    generator=torch.Generator().manual_seed(seed), dtype=dtype,
                    pre_bias=mech.pre_bias)
    with torch.no_grad():
        m.b1.uniform_(-0.1, 0.3, generator=torch.Generator().manual_seed(seed + 5))
        m.b2.fill_(0.2)
        if hasattr(m.code, "log_threshold"):  # thresholds inside the pre-activations' range
            m.code.log_threshold.copy_(torch.full((M,), 0.15, dtype=dtype).log())
            m.code.bandwidth = 0.3  # wide, so that many samples fall in the kernel
    return m.to(dtype), obj


@pytest.fixture(params=["dense", "sparse"])
def products(request, monkeypatch):
    """Force the step's path (the test shapes are too small and too full for the rule to pick
    the sparse one); the test gets the path's name and a list of its sparse calls."""
    sparse = request.param == "sparse"
    monkeypatch.setattr(sparse_products, "MAX_DENSITY", 1.0 if sparse else -1.0)
    monkeypatch.setattr(sparse_products, "MIN_PRODUCT", 0)
    return request.param, _spy_sparse_path(monkeypatch)


def _spy_sparse_path(monkeypatch) -> list:
    """A list that grows by one each time the step takes its sparse path."""
    calls, real = [], fused_sparse._sparse_path_gradients
    monkeypatch.setattr(fused_sparse, "_sparse_path_gradients",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


CASES = [("topk", 0), ("topk", 7), ("batchtopk", 0), ("batchtopk", 7), ("jumprelu", 0),
         ("sqjumprelu", 0)]  # AuxK (dead units) belongs to the top-k codes


@pytest.mark.parametrize("name, n_dead", CASES)
def test_sparse_gradients_equal_autograd(name, n_dead, products):
    x = torch.rand(N, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, obj = _model(name)
    b, _ = _model(name)
    dead = torch.zeros(M, dtype=torch.bool)
    dead[torch.randperm(M, generator=torch.Generator().manual_seed(3))[:n_dead]] = True
    assert sparse_fusable(b, obj, "adam") and not sparse_fusable(b, obj, "lbfgs")
    if n_dead:
        a.code.dead = dead
    ref = Trainer(a, obj, weight_decay=1e-2, fused=False)
    total, recon, sparse = ref.loss(x)
    total.backward()
    terms, h = sparse_gradients(b, obj, x, "fp32", weight_decay=1e-2,
                                dead=dead if n_dead else None)
    torch.testing.assert_close(terms, torch.stack([total, recon, sparse]).detach(),
                               rtol=1e-10, atol=1e-12)
    for (pname, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert pa.grad is not None and pb.grad is not None, pname
        torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-9, atol=1e-12,
                                   msg=f"{name} dead={n_dead} {pname}")
    if n_dead:
        assert float(sparse.detach()) > 0  # AuxK really ran
    assert bool(products[1]) == (products[0] == "sparse")


@pytest.mark.parametrize("name", ["topk", "jumprelu"])
def test_sparse_bf16_step_tracks_float32(name):
    x = torch.rand(256, D, generator=torch.Generator().manual_seed(2))
    a, obj = _model(name, torch.float32)
    b, _ = _model(name, torch.float32)
    t32, _ = sparse_gradients(a, obj, x, "fp32")
    t16, _ = sparse_gradients(b, obj, x, "bf16")
    torch.testing.assert_close(t16, t32, rtol=3e-2, atol=1e-3)
    for (pname, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        rel = float((pa.grad - pb.grad).norm() / pa.grad.norm().clamp_min(1e-12))
        assert rel < 5e-2 and pb.grad.dtype == torch.float32, (pname, rel)


@pytest.mark.parametrize("shape, k", [((256, 1000), 6400), ((37, 24), 148), ((5, 3), 15),
                                      ((64, 100), 1), ((64, 100), 6399)])
@pytest.mark.parametrize("kind", ["normal", "skewed", "ties"])
def test_kth_largest_is_exact(shape, k, kind):
    from psae.sparsity.batchtopk import kth_largest

    g = torch.Generator().manual_seed(k)
    a = torch.randn(shape, generator=g)
    if kind == "skewed":  # the strided sample sees none of the large values
        a = torch.full(shape, -1.0)
        a.view(-1)[1::16] = torch.rand(a.view(-1)[1::16].shape, generator=g)
    elif kind == "ties":
        a = a.round()
    flat = a.flatten()
    k = min(k, flat.numel())
    assert float(kth_largest(flat, k)) == float(flat.topk(k).values.min())


@pytest.mark.parametrize("name", ["topk", "batchtopk"])
@pytest.mark.parametrize("case", ["some_silent", "all_silent", "many_firing"])
def test_auxk_on_firing_dead_units_equals_autograd(name, case, products):
    """AuxK leaves out the dead units negative on every row (exact: its code is a ReLU) and
    skips its top-k where no row has more than 2k positive dead units; autograd's AuxK takes
    every dead unit and its top-k. ``many_firing``: 20 dead units, rows with more than 2k = 8
    of them positive, so the top-k decides."""
    x = torch.rand(N, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    n_dead = {"some_silent": 16, "all_silent": 7, "many_firing": 20}[case]
    silent = {"some_silent": 6, "all_silent": 7, "many_firing": 0}[case]
    dead = torch.zeros(M, dtype=torch.bool)
    cols = torch.randperm(M, generator=torch.Generator().manual_seed(3))[:n_dead]
    dead[cols] = True
    a, obj = _model(name)
    b, _ = _model(name)
    for m in (a, b):
        with torch.no_grad():
            m.b1[cols[:silent]] = -50.0  # never positive: out of AuxK's reach
            if case == "many_firing":
                m.b1[cols] = 5.0  # positive on every row
    a.code.dead = dead
    ref = Trainer(a, obj, fused=False)
    total, recon, sparse = ref.loss(x)
    total.backward()
    terms, _ = sparse_gradients(b, obj, x, "fp32", dead=dead)
    torch.testing.assert_close(terms, torch.stack([total, recon, sparse]).detach(),
                               rtol=1e-10, atol=1e-12)
    for (pname, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-9, atol=1e-12, msg=pname)
    h_pre = fused_sparse._firing_dead(torch.addmm(b.b1, x - b.b2, b.W1.t()), dead)
    assert h_pre.numel() == n_dead - silent
    if case == "all_silent":  # nothing reconstructs the residual: L_aux = ‖e‖² / N
        torch.testing.assert_close(terms[2], terms[1])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_dense_step_writes_its_gradients_into_the_last_steps_memory(precision):
    """TopK's dense step (AuxK adding into ∂W2ᵀ's rows) reuses the weight gradients' memory
    and leaves nothing of the last step in it: the second step equals a fresh model's."""
    g = torch.Generator().manual_seed(2)
    x1, x2 = (torch.rand(N, D, generator=g) for _ in range(2))
    dead = torch.zeros(M, dtype=torch.bool)
    dead[:9] = True
    (used, obj), (fresh, _) = _model("topk", torch.float32), _model("topk", torch.float32)
    sparse_gradients(used, obj, x1, precision, dead=dead, sparse=False)
    before = {name: getattr(used, name).grad.data_ptr() for name in ("W1", "atoms")}
    sparse_gradients(used, obj, x2, precision, dead=dead, sparse=False)
    sparse_gradients(fresh, obj, x2, precision, dead=dead, sparse=False)
    for name, ptr in before.items():
        assert getattr(used, name).grad.data_ptr() == ptr
        assert torch.equal(getattr(used, name).grad, getattr(fresh, name).grad)


def test_auxk_products_see_few_widths():
    """AuxK's products are padded to a few widths (a bf16 product builds a kernel per shape):
    never narrower than the dead units, at most 64 wider, or 12.5 % past 512, and 48 widths
    for every count up to 16,384."""
    widths = [fused_sparse.padded_width(n) for n in range(1, 16385)]
    for n, w in enumerate(widths, start=1):
        assert n <= w <= max(n + 63, int(n * 1.125)) and w % 64 == 0
    assert len(set(widths)) == 48  # 16 up to 1,024, then 8 an octave


@pytest.mark.parametrize("firing", [1, 63, 64, 65, 128, 150])
def test_padded_auxk_equals_unpadded(firing):
    """AuxK's products on padded widths (bf16 on the CPU) give the unpadded values and
    gradients: the padding's codes are zero, and its rows are sliced off before they are
    added (float64, where both are exact but for the order of the sums)."""
    g = torch.Generator().manual_seed(firing)
    n, d, m = 37, 14, 200
    a = torch.randn(n, m, generator=g, dtype=torch.float64)
    dead = torch.zeros(m, dtype=torch.bool)
    dead[:firing + 10] = True
    a[:, firing:firing + 10] = -1.0  # ten silent dead units: left out
    a[0, :firing] = 1.0  # the firing ones are positive somewhere
    W2 = torch.randn(d, m, generator=g, dtype=torch.float64)
    delta2 = torch.randn(n, d, generator=g, dtype=torch.float64)

    class Code:
        k = 4

    def same(t):
        return t

    plain = fused_sparse._auxk(Code, a, delta2.clone(), W2, dead, 0.3, n, same, same)
    padded = fused_sparse._auxk(Code, a, delta2.clone(), W2, dead, 0.3, n, same, same,
                                pad=True)
    torch.testing.assert_close(padded[0], plain[0], rtol=1e-12, atol=0)
    for got, want in zip(padded[1], plain[1], strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert plain[1][0].tolist() == list(range(firing))


@pytest.mark.parametrize("m, k", [(1000, 25), (1003, 25), (100, 3), (64, 2), (50, 10), (9, 1)])
@pytest.mark.parametrize("kind", ["normal", "ties", "bf16", "column_offsets"])
def test_row_top_k_is_topk(m, k, kind):
    """The block pre-selection finds each row's k largest entries exactly: the same values as
    ``topk``, at columns that hold them, no column twice (which of equal values is free)."""
    from psae.sparsity.topk import row_top_k

    g = torch.Generator().manual_seed(m + k)
    a = torch.randn(40, m, generator=g)
    if kind == "ties":
        a = a.mul(2).round()
    elif kind == "bf16":
        a = a.bfloat16()
    elif kind == "column_offsets":  # a few columns large on every row
        a = a + torch.linspace(-3, 3, m)
    vals, idx = row_top_k(a, k)
    ref = a.topk(k, dim=1).values
    assert vals.shape == idx.shape == (40, k)
    assert torch.equal(vals.sort(dim=1).values, ref.sort(dim=1).values)
    assert torch.equal(a.gather(1, idx), vals)
    assert all(len(set(row.tolist())) == k for row in idx)


def _both_paths(monkeypatch, name, x, dead=None, prepare=None):
    """The step's (terms, h, grads) on the dense path and on the sparse one, float32."""
    out, calls = [], _spy_sparse_path(monkeypatch)
    monkeypatch.setattr(sparse_products, "MIN_PRODUCT", 0)
    for density in (-1.0, 1.0):
        monkeypatch.setattr(sparse_products, "MAX_DENSITY", density)
        m, obj = _model(name, torch.float32)
        if prepare:
            prepare(m)
        terms, h = sparse_gradients(m, obj, x, "fp32", 1e-3, dead)
        out.append((terms, h, [p.grad.clone() for p in m.parameters()]))
        assert len(calls) == (density > 0)  # each path really ran
        assert all(p.grad.stride() == p.stride() for p in m.parameters())  # as Adam wants
    return out


def _assert_same_step(dense, sparse):
    torch.testing.assert_close(sparse[0], dense[0], rtol=1e-5, atol=1e-6)
    assert torch.equal(sparse[1], dense[1])  # the same codes
    for gd, gs in zip(dense[2], sparse[2], strict=True):
        torch.testing.assert_close(gs, gd, rtol=1e-4, atol=1e-6)
        assert gs.stride() == gd.stride()  # the layout Adam and all-reduce see


@pytest.mark.parametrize("name", ["topk", "batchtopk", "jumprelu", "sqjumprelu"])
@pytest.mark.parametrize("case", ["all_negative", "silent_units", "all_dead", "strided"])
def test_sparse_path_edge_cases_match_dense(monkeypatch, name, case):
    """Rows whose top-k are all rectified to zero, units with no entry, every unit dead
    (AuxK on all of them) and a non-contiguous batch give the dense path's step."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand(N, D, generator=g)
    dead, prepare = None, None
    if case == "all_negative":
        def prepare(m):
            m.b1.data.fill_(-50.0)  # every pre-activation negative: TopK keeps only zeros
    elif case == "silent_units":
        def prepare(m):
            m.b1.data[: M // 2] = -50.0  # half the units never fire (nor reach the kernel)
    elif case == "all_dead":
        dead = torch.ones(M, dtype=torch.bool)
    else:
        x = torch.rand(D, 2 * N, generator=g).t()[::2]
    dense, sparse = _both_paths(monkeypatch, name, x, dead, prepare)
    _assert_same_step(dense, sparse)
    if case == "all_dead" and name in ("topk", "batchtopk"):
        assert float(sparse[0][2]) > 0


def test_code_pattern_products_equal_dense():
    """Decode, left product, sampled product and column sums against dense arithmetic, with
    empty rows and empty units."""
    g = torch.Generator().manual_seed(0)
    n, m, d = 9, 11, 5
    mask = torch.rand(n, m, generator=g) < 0.3
    mask[2] = False
    mask[:, 4] = False
    h = torch.randn(n, m, generator=g, dtype=torch.float64) * mask
    p = CodePattern.from_dense(mask)
    v = p.gather(h)
    A, X = (torch.randn(m, d, generator=g, dtype=torch.float64),
            torch.randn(n, d, generator=g, dtype=torch.float64))
    torch.testing.assert_close(p.decode(v, A), h @ A)
    torch.testing.assert_close(p.left_product(v, X), h.t() @ X)
    torch.testing.assert_close(p.sampled(X, A.t()), (X @ A.t())[mask])
    torch.testing.assert_close(p.column_sums(v), h.sum(dim=0))
    idx = torch.randn(n, m, generator=g).topk(3, dim=1, sorted=False).indices
    q, perm = CodePattern.from_topk(idx, m)
    vals = torch.randn(n, 3, generator=g, dtype=torch.float64)
    dense = torch.zeros(n, m, dtype=torch.float64).scatter_(1, idx, vals)
    torch.testing.assert_close(q.decode(vals.flatten()[perm], A), dense @ A)
    assert torch.equal(q.gather(dense), vals.flatten()[perm])
    units = torch.tensor([0, 2, 3, 5, 6, 8, 9, 10, 12, 15, 16])  # m columns among 17
    wide = torch.zeros(n, 17, dtype=torch.float64).index_copy_(1, units, h)
    r, B = p.renumbered(units, 17), torch.randn(17, d, generator=g, dtype=torch.float64)
    torch.testing.assert_close(r.decode(v, B), wide @ B)
    torch.testing.assert_close(r.sampled(X, B.t()), (X @ B.t())[wide != 0])
    torch.testing.assert_close(r.left_product(v, X), wide.t() @ X)
    torch.testing.assert_close(r.column_sums(v), wide.sum(dim=0))
    torch.testing.assert_close(decode_rows(h, A), h @ A)  # row 2 empty
    empty = CodePattern.from_dense(torch.zeros(n, m, dtype=torch.bool))
    assert empty.nnz == 0
    assert not empty.decode(A.new_zeros(0), A).any()
    assert not empty.left_product(X.new_zeros(0), X).any()


def test_sampled_product_ignores_uninitialised_memory(monkeypatch):
    """``sampled_addmm`` with beta = 0 still multiplies its input's values on the CPU: the
    pattern must hand it zeros, whatever fresh memory holds (here NaN)."""
    real = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, "new_empty",
                        lambda self, *a, **k: real(self, *a, **k).fill_(float("nan")))
    g = torch.Generator().manual_seed(1)
    p = CodePattern.from_dense(torch.rand(6, 5, generator=g) < 0.5)
    left, right = torch.randn(6, 3, generator=g), torch.randn(3, 5, generator=g)
    torch.testing.assert_close(p.sampled(left, right), p.gather(left @ right))


@pytest.mark.parametrize("precision, path", [("fp32", "sparse"), ("bf16", "dense")])
def test_sparse_gradients_follow_the_rule(monkeypatch, precision, path):
    """Through :func:`sparse_gradients` itself: a sparse enough code at MNIST's shapes takes
    the sparse path in float32 and stays dense in bf16 (or with ``sparse=False``)."""
    calls = _spy_sparse_path(monkeypatch)
    obj = Objective.of("topk", n_components=1000, k=25)
    mech = sparsity.get("topk")
    m = Autoencoder(784, 1000, mech.code(1000, dict(obj.settings)), mech.decoder,
                    generator=torch.Generator().manual_seed(0), pre_bias=True)
    x = torch.rand(64, 784, generator=torch.Generator().manual_seed(1))
    sparse_gradients(m, obj, x, precision)
    assert bool(calls) == (path == "sparse")
    sparse_gradients(m, obj, x, precision, sparse=False)
    assert len(calls) == (path == "sparse")


def test_sparse_products_decision_rule():
    """Sparse only on the CPU, not in bf16, for codes at most 1/8 full and products of at
    least ``MIN_PRODUCT`` multiply-adds."""
    a = torch.zeros(256, 1000)
    assert use_sparse_products(a, 256 * 25, "fp32", 784)
    assert not use_sparse_products(a, 256 * 25, "bf16", 784)
    assert not use_sparse_products(a, 256 * 200, "fp32", 784)  # 1/5 full
    assert not use_sparse_products(a, 256 * 25, "fp32", 16)  # 4 million multiply-adds
    assert not use_sparse_products(a.to("meta"), 256 * 25, "fp32", 784)
    assert not use_sparse_products(a.half(), 256 * 25, "fp32", 784)


@pytest.mark.parametrize("name", ["topk", "batchtopk"])
def test_duplicate_rows_tie_and_the_step_still_keeps_k_per_sample(name, products):
    """Two equal rows tie at the batch's (k·B)-th value: BatchTopK's step kept every tied
    entry (5 of k·B = 4 here) and its gradients left autograd's."""
    obj = Objective.of(name, n_components=M, k=1)

    def net():
        m = Autoencoder(D, M, sparsity.get(name).code(M, dict(obj.settings)), "identity",
                        dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                        pre_bias=True)
        with torch.no_grad():
            m.b1.uniform_(-0.1, 0.3, generator=torch.Generator().manual_seed(5))
            m.b2.fill_(0.2)
        return m

    g = torch.Generator().manual_seed(104)
    x1 = torch.rand(1, D, generator=g, dtype=torch.float64)
    x = torch.cat([x1, x1, torch.rand(2, D, generator=g, dtype=torch.float64)])
    ref, mine = net(), net()
    total, _, _ = Trainer(ref, obj, fused=False).loss(x)
    total.backward()
    terms, h = sparse_gradients(mine, obj, x)
    assert int((h > 0).sum()) <= x.shape[0]
    assert float(terms[0]) == pytest.approx(float(total.detach()), rel=1e-9)
    for p, q in zip(ref.parameters(), mine.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_firing_tracker_counts_as_a_bool_mask_does(dtype):
    """The tracker's float masks give what ``|h| > threshold`` as bools gives: the mean L0 and
    the units that fired, NaN entries counted as silent, half precision compared in its own
    dtype (0.01 in bf16 is 0.010009765625, above the threshold as bf16 rounds it: not)."""
    from psae.training.monitor import FiringTracker

    g = torch.Generator().manual_seed(0)
    h = torch.rand(64, 40, generator=g).mul_(torch.rand(64, 40, generator=g) < 0.3)
    h[3, 5], h[7, 6], h[:, 9] = float("nan"), 0.01, float("nan")
    h[0, 9] = 0.5  # a unit that fired once beside NaNs
    h = h.to(dtype)
    tracker = FiringTracker(40, window=1000, threshold=0.01, device=torch.device("cpu"))
    tracker.since += 5
    l0 = tracker.observe(h)
    active = h.abs() > 0.01
    assert l0 == pytest.approx(float(active.sum()) / 64, abs=0)
    assert torch.equal(tracker.since == 0, active.any(dim=0))


def test_count_ones_is_exact():
    from psae.training.masks import EXACT_SUM, count_ones

    assert count_ones(torch.ones(1000)) == 1000
    assert count_ones(torch.ones(300, dtype=torch.bfloat16)) == 300  # bf16 sums stop at 256
    big = torch.ones(EXACT_SUM + 3)
    assert count_ones(big) == EXACT_SUM + 3
