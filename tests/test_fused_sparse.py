"""The hand-derived step of TopK, BatchTopK and both JumpReLUs against autograd (the oracle),
with and without dead units for AuxK, in float64 and in bf16."""

import pytest
import torch

from psae import sparsity
from psae.training.fused_sparse import sparse_fusable, sparse_gradients
from psae.training.network import Autoencoder
from psae.training.objective import Objective
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


CASES = [("topk", 0), ("topk", 7), ("batchtopk", 0), ("batchtopk", 7), ("jumprelu", 0),
         ("sqjumprelu", 0)]  # AuxK (dead units) belongs to the top-k codes


@pytest.mark.parametrize("name, n_dead", CASES)
def test_sparse_gradients_equal_autograd(name, n_dead):
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
