"""The hand-derived training step against autograd (the oracle), and the bf16 precision path."""

import numpy as np
import pytest
import torch

from psae import SparseAutoencoder, sparsity
from psae.training.fused import fusable, fused_gradients
from psae.training.network import Autoencoder
from psae.training.objective import Objective
from psae.training.precision import native_bf16, resolve_precision
from psae.training.trainer import Trainer

SETTINGS = {"lam": 7.0, "beta": 0.02, "rho": 0.1}


def _pair(act, dec, dtype=torch.float64, seed=0):
    def make():
        return Autoencoder(12, 9, act, dec, generator=torch.Generator().manual_seed(seed),
                           dtype=dtype)
    return make(), make()


@pytest.mark.parametrize("penalty", ["none", "l1", "kl", "sql0", "l0"])
@pytest.mark.parametrize("act, dec", [("sigmoid", "sigmoid"), ("tanh", "identity"),
                                      ("softplus", "sigmoid"), ("relu", "identity")])
def test_fused_gradients_equal_autograd(penalty, act, dec):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(33, 12, generator=g, dtype=torch.float64) * 0.8 + 0.1
    a, b = _pair(act, dec)
    with torch.no_grad():  # move off the all-zero biases so every term is exercised
        for m in (a, b):
            m.b1.fill_(0.3)
            m.b2.fill_(-0.2)
    obj = Objective.of(penalty, **SETTINGS)
    ref = Trainer(a, obj, weight_decay=1e-2)
    total, recon, sparse = ref.loss(x, 0.4)
    total.backward()
    terms, _ = fused_gradients(b, obj, x, 0.4, "fp32", weight_decay=1e-2)
    torch.testing.assert_close(terms, torch.stack([total, recon, sparse]).detach(),
                               rtol=1e-10, atol=1e-12)
    for name in ("W1", "b1", "atoms", "b2"):
        torch.testing.assert_close(getattr(b, name).grad, getattr(a, name).grad, rtol=1e-9,
                                   atol=1e-12, msg=f"{penalty} {act}/{dec} {name}")
        # in the parameter's own layout: fused Adam runs 4x slower on mismatched strides
        assert getattr(b, name).grad.stride() == getattr(b, name).stride()


def test_decoder_is_stored_atom_by_atom_with_w2_its_view():
    m = Autoencoder(5, 3, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    r = (6.0 / 9) ** 0.5
    W1 = (torch.rand(3, 5, generator=g) * 2 - 1) * r
    W2 = (torch.rand(5, 3, generator=g) * 2 - 1) * r  # the draw W2 (D × M) always had
    assert torch.equal(m.W1, W1) and torch.equal(m.W2, W2)
    assert m.atoms.shape == (3, 5) and m.atoms.is_contiguous()
    with torch.no_grad():
        m.W2[4, 1] = 7.0  # one storage: a write through the view reaches the parameter
    assert float(m.atoms.detach()[1, 4]) == 7.0
    m.normalise_decoder()
    torch.testing.assert_close(m.W2.norm(dim=0), torch.ones(3))


def test_resampling_clears_the_moments_of_the_resampled_units_only():
    from psae.training.monitor import resample_dead
    from psae.training.trainer import adam

    m = Autoencoder(6, 4, generator=torch.Generator().manual_seed(0))
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(1))
    opt = adam(m.parameters(), 1e-2)
    Trainer(m, Objective.of("none")).loss(x)[0].backward()
    opt.step()
    dead = torch.tensor([True, False, False, True])
    before = m.atoms.detach().clone()
    assert resample_dead(m, dead, x, opt, torch.Generator().manual_seed(2)) == 2
    with torch.no_grad():  # new atoms at norm 0.2, the live ones untouched
        torch.testing.assert_close(m.W2[:, dead].norm(dim=0), torch.full((2,), 0.2))
        assert torch.equal(m.atoms[~dead], before[~dead])
    for p in (m.W1, m.b1, m.atoms):
        for key in ("exp_avg", "exp_avg_sq"):
            moment = opt.state[p][key]
            assert not moment[dead].any() and moment[~dead].abs().sum() > 0, (p.shape, key)


def test_every_paper_mechanism_is_fused_and_others_fall_back_to_autograd():
    m = Autoencoder(4, 3)
    for name in ("none", "l1", "kl", "sql0", "l0"):
        assert fusable(m, Objective.of(name, **SETTINGS), "adam")
        assert not fusable(m, Objective.of(name, **SETTINGS), "lbfgs")
    toy = sparsity.Mechanism(name="toy2", label="t", summary="t", formula="t",
                             penalty=lambda h, s, st, **e: h.sum(), weights=lambda s: (0.5, 1.0))
    assert not fusable(m, Objective(toy, {}), "adam")


def test_bf16_step_tracks_the_float32_step():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(256, 784, generator=g) * 0.8 + 0.1
    a, b = _pair("sigmoid", "sigmoid", torch.float32)
    a = Autoencoder(784, 300, generator=torch.Generator().manual_seed(3))
    b = Autoencoder(784, 300, generator=torch.Generator().manual_seed(3))
    obj = Objective.of("sql0", lam=10.0)
    t32, _ = fused_gradients(a, obj, x, 0.5, "fp32")
    t16, _ = fused_gradients(b, obj, x, 0.5, "bf16")
    torch.testing.assert_close(t16, t32, rtol=2e-2, atol=1e-3)
    for name in ("W1", "atoms"):
        ga, gb = getattr(a, name).grad, getattr(b, name).grad
        rel = float((ga - gb).norm() / ga.norm())
        assert rel < 2e-2, (name, rel)
        assert gb.dtype == torch.float32  # master weights and their gradients stay float32


def test_precision_auto_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("PSAE_NATIVE_BF16", "0")
    assert not native_bf16(cpu) and resolve_precision("auto", cpu) == "fp32"
    with pytest.warns(UserWarning, match="no native bf16"):
        assert resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setenv("PSAE_NATIVE_BF16", "1")
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("auto", cpu, size=784 * 1000) == "bf16"
    assert resolve_precision("auto", cpu, size=64 * 100) == "fp32"  # too small to gain


def test_precision_is_chosen_stored_and_used_by_transform(monkeypatch, digits, tmp_path):
    Xtr, Xte = digits[0], digits[1]
    monkeypatch.setenv("PSAE_NATIVE_BF16", "0")
    m32 = SparseAutoencoder(n_components=20, epochs=8, random_state=0, device="cpu").fit(Xtr)
    assert m32.precision_ == "fp32"
    monkeypatch.setenv("PSAE_NATIVE_BF16", "1")
    m16 = SparseAutoencoder(n_components=20, epochs=8, random_state=0, device="cpu",
                            precision="bf16").fit(Xtr)
    assert m16.precision_ == "bf16"
    auto = SparseAutoencoder(n_components=20, epochs=8, random_state=0, device="cpu").fit(Xtr)
    assert auto.precision_ == "fp32"  # digits: 64 x 20 weights, too small for bf16 to pay
    m16.save(tmp_path / "m")
    assert SparseAutoencoder.load(tmp_path / "m").precision_ == "bf16"
    H16, H32 = m16.transform(Xte), m32.transform(Xte)
    assert H16.dtype == np.float32 and np.abs(H16 - H32).max() < 0.1
    # float64 input keeps the float64 path, exactly
    H64 = m16.transform(Xte.astype(np.float64))
    assert H64.dtype == np.float64
    fp32 = SparseAutoencoder.load(tmp_path / "m", device="cpu").set_params(precision="fp32")
    assert not np.array_equal(fp32.transform(Xte), H16)  # bf16 encoding really ran
    with pytest.raises(ValueError, match="precision"):
        SparseAutoencoder(precision="fp16", device="cpu").fit(Xtr)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_step_writes_its_gradients_into_the_last_steps_memory(precision):
    """The second step's weight gradients land in the first's memory (a new multi-megabyte
    gradient each step costs page faults) and equal a fresh model's on that batch."""
    g = torch.Generator().manual_seed(2)
    x1, x2 = (torch.rand(20, 12, generator=g) for _ in range(2))
    obj = Objective.of("sql0", **SETTINGS)
    used, fresh = _pair("sigmoid", "sigmoid", dtype=torch.float32)
    fused_gradients(used, obj, x1, 0.4, precision)
    before = {name: getattr(used, name).grad.data_ptr() for name in ("W1", "atoms")}
    fused_gradients(used, obj, x2, 0.4, precision)
    fused_gradients(fresh, obj, x2, 0.4, precision)
    for name, ptr in before.items():
        assert getattr(used, name).grad.data_ptr() == ptr
        assert torch.equal(getattr(used, name).grad, getattr(fresh, name).grad)


def test_flush_zeroes_only_moments_too_small_to_move_a_weight():
    from psae.training.trainer import flush_vanishing_moments

    p = torch.nn.Parameter(torch.zeros(6))
    opt = torch.optim.Adam([p], lr=1e-3)
    p.grad = torch.ones(6)
    opt.step()
    state = opt.state[p]
    state["exp_avg"].copy_(torch.tensor([1e-21, -1e-21, 2e-39, 1e-19, -0.5, 0.0]))
    state["exp_avg_sq"].copy_(torch.tensor([1e-31, 2e-39, 1e-29, 0.25, 1e-12, 0.0]))
    flush_vanishing_moments(opt)
    assert state["exp_avg"].tolist() == pytest.approx([0, 0, 0, 1e-19, -0.5, 0], rel=1e-6)
    assert state["exp_avg_sq"].tolist() == pytest.approx([0, 0, 1e-29, 0.25, 1e-12, 0],
                                                         rel=1e-6)
    assert state["exp_avg"][3] != 0 and state["exp_avg_sq"][2] != 0


def test_trainer_flushes_moments_every_few_steps_and_keeps_no_subnormal(monkeypatch):
    """A unit with no gradient (its encoder row and bias far negative under a ReLU) has its
    first moment decay by 0.9 a step; the trainer's flush keeps it out of the subnormals."""
    from psae.training import trainer as trainer_module

    calls = []
    real = trainer_module.flush_vanishing_moments
    monkeypatch.setattr(trainer_module, "flush_vanishing_moments",
                        lambda opt: calls.append(1) or real(opt))
    m = Autoencoder(12, 9, "relu", "identity", generator=torch.Generator().manual_seed(0))
    t = Trainer(m, Objective.of("none"), lr=1e-2)
    x = torch.rand(16, 12, generator=torch.Generator().manual_seed(1))
    t.step(x)  # the unit still learns on this step: its moments start normal
    with torch.no_grad():
        m.W1[0].fill_(-1.0)
        m.b1[0] = -100.0  # dead from now on: its gradient is exactly zero
    for _ in range(2 * trainer_module.FLUSH_EVERY - 1):
        t.step(x)
    assert len(calls) == 2
    m1 = t.optimizer.state[m.W1]["exp_avg"][0]
    assert bool((m1 == 0).all())  # 0.9^511 of a normal moment would be a subnormal or zero
    everything = torch.cat([s[k].flatten() for s in t.optimizer.state.values()
                            for k in ("exp_avg", "exp_avg_sq")])
    assert not bool(((everything != 0) & (everything.abs() < torch.finfo(torch.float32).tiny)
                     ).any())
