"""The stopping rule's parts: stages that settle, the trimmed-code watch, the best epoch kept,
and ``max_epochs``."""

import math

import numpy as np
import pytest
import torch

from psae import SparseAutoencoder
from psae.errors import ParameterError
from psae.training.network import Activation, Autoencoder
from psae.training.stopping import Plateau


def test_an_earlier_stage_settles_on_a_loose_tolerance_once_it_has_learned():
    stopper = Plateau(torch.zeros(1, 1), patience=3, stage_tol=0.02)
    stopper.variance = 1.0
    stopper.new_stage(last=False)
    stopper.lowest_raw = 0.5  # it has left its start (FVU 0.5)
    falling = [0.5 * 0.97 ** e for e in range(20)]  # 3 % an epoch: still working
    assert not any(stopper.settled(r) for r in falling)
    slow = [falling[-1] * 0.995 ** e for e in range(1, 5)]  # 0.5 % an epoch: done
    assert [stopper.settled(r) for r in slow] == [False, False, True, True]
    start = Plateau(torch.zeros(1, 1), patience=3)
    start.variance = 1.0
    start.new_stage(last=False)
    assert not any(start.settled(0.99) for _ in range(10))  # flat, but never left its start


def test_the_last_stage_watches_the_codes_trimmed_to_the_target():
    g = torch.Generator().manual_seed(0)
    module = Autoencoder(6, 10, Activation("sigmoid"), "sigmoid", generator=g)
    X = torch.rand(50, 6, generator=g)
    stopper = Plateau(X, target_l0=2)
    stopper.new_stage(last=False)
    with torch.no_grad():
        raw = float((X - module(X).y).square().mean())
    assert stopper.validation_re(module) == pytest.approx(raw, rel=1e-5)
    stopper.new_stage(last=True)
    with torch.no_grad():
        H = module.encode(X)
        theta = max(0.01, float(H.flatten().kthvalue(H.numel() - 100).values))
        expect = float((X - module.decode(H * (H > theta))).square().mean())
    assert stopper.validation_re(module) == pytest.approx(expect, rel=1e-5)


def test_a_fit_whose_trimmed_codes_stay_poor_still_stops_once_its_model_has_learned():
    """PSAE at L0 10 on MNIST: trimmed to the target its codes explain under 10 % of the
    held-out variance, its raw codes about 80 %. The model has left its start, so a plateau
    of the trimmed RE ends the fit instead of the epoch cap."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(200, 6, generator=g)
    module = Autoencoder(6, 10, Activation("sigmoid"), "sigmoid", generator=g)
    stopper = Plateau(X, target_l0=1, patience=2)
    stopper.new_stage(last=True)
    trimmed = stopper.observe(module)
    with torch.no_grad():
        raw = float((X - module(X).y).square().mean())
    assert stopper.lowest_raw == pytest.approx(raw, rel=1e-5)  # taken on the way

    class Trainer:
        lr = 1.0

        def scale_lr(self, f):
            self.lr *= f

    t = Trainer()
    t.module = module
    stopper.variance = max(trimmed, raw) / 0.95  # FVU 0.95 raw and trimmed: never learned
    assert not stopper.left_start
    assert not any(stopper.after_epoch(t, may_stop=True)[1] for _ in range(8))
    assert t.lr == 1.0
    stopper.lowest_raw = 0.2 * stopper.variance  # raw FVU 0.2, trimmed still 0.95
    assert stopper.left_start
    verdicts = [stopper.after_epoch(t, may_stop=True)[1] for _ in range(8)]
    assert t.lr < 1.0 and any(verdicts)  # a plateau lowered the step, the next one stopped


def test_the_fit_ends_on_its_best_epoch_on_target():
    module = torch.nn.Linear(1, 1)

    class Trainer:
        lr = 1.0

        def __init__(self):
            self.module = module

        def scale_lr(self, f):
            self.lr *= f

    stopper, trainer = Plateau(torch.zeros(1, 1), patience=1), Trainer()
    stopper.variance = 1.0
    curve = iter([0.5, 0.2, 0.3, 0.4, 0.45, 0.5])
    stopper.validation_re = lambda m: next(curve)
    kept = None
    for epoch in range(6):
        with torch.no_grad():
            module.weight.fill_(epoch)
        re, stop = stopper.after_epoch(trainer, may_stop=True)
        if epoch == 1:
            kept = module.weight.clone()
        if stop:
            break
    assert stop and stopper.restore_best(module, re)
    assert torch.equal(module.weight, kept) and stopper.best_state_re == 0.2


def test_off_target_epochs_are_never_the_ones_kept():
    stopper = Plateau(torch.zeros(1, 1))
    module = torch.nn.Linear(1, 1)
    stopper.validation_re = lambda m: 0.1

    class Trainer:
        lr = 1.0

    trainer = Trainer()
    trainer.module = module
    stopper.after_epoch(trainer, may_stop=False)
    assert stopper.best_state is None and stopper.best_state_re == math.inf


def test_max_epochs_runs_past_the_schedule_and_is_checked():
    X = np.random.default_rng(0).uniform(size=(300, 8)).astype(np.float32)
    with pytest.raises(ParameterError, match="without early_stopping"):
        SparseAutoencoder(n_components=4, epochs=3, max_epochs=10).fit(X)
    with pytest.raises(ParameterError, match="below epochs"):
        SparseAutoencoder(n_components=4, epochs=30, max_epochs=10,
                          early_stopping=True).fit(X)
    m = SparseAutoencoder(n_components=4, penalty="none", epochs=2, max_epochs=6, tol=0.0,
                          n_iter_no_change=50, early_stopping=True, random_state=0,
                          device="cpu").fit(X)
    assert m.n_iter_ == 6 and not m.stopped_early_  # never converged: ran to the cap


def test_gains_too_small_to_matter_make_a_plateau():
    """An overcomplete RAE on MNIST gained 0.2 % an epoch at FVU 0.017 for 100 epochs: under a
    tenth of the variance, progress is measured against that tenth."""
    class Trainer:
        lr = 1.0

        def __init__(self):
            self.module = torch.nn.Linear(1, 1)

        def scale_lr(self, f):
            self.lr *= f

    def epochs_until_stop(curve):
        stopper, trainer = Plateau(torch.zeros(1, 1), tol=0.005, patience=3), Trainer()
        stopper.variance = 1.0
        values = iter(curve)
        stopper.validation_re = lambda m: next(values)
        for epoch in range(len(curve)):
            if stopper.after_epoch(trainer, may_stop=True)[1]:
                return epoch + 1
        return None

    assert epochs_until_stop([0.017 * 0.998 ** e for e in range(100)]) == 7
    # at FVU 0.5 the same 0.2 % an epoch is progress (0.6 % over the 3-epoch patience)
    assert epochs_until_stop([0.5 * 0.998 ** e for e in range(100)]) is None
    assert epochs_until_stop([0.5 * 0.999 ** e for e in range(100)]) == 7


def test_sparse_held_out_codes_are_decoded_on_their_non_zeros(monkeypatch):
    """The rule's RE of a sparse code (raw and trimmed) through the bags equals the dense
    decode's; the bag path is forced at this toy size and checked to have run."""
    from psae.sparsity.topk import TopK
    from psae.training import sparse_products, stopping

    calls = []
    real = stopping.decode_rows
    monkeypatch.setattr(stopping, "decode_rows", lambda h, a: calls.append(1) or real(h, a))
    monkeypatch.setattr(sparse_products, "MIN_PRODUCT", 0)
    g = torch.Generator().manual_seed(3)
    module = Autoencoder(12, 40, TopK(4), "identity", generator=g, pre_bias=True)
    module.eval()
    X = torch.rand(60, 12, generator=g)
    with torch.no_grad():
        module.b2.copy_(X.mean(dim=0))
        H = module.encode(X)
        raw = float((X - module.decode(H)).square().mean())
        theta = float(H[H > 0].kthvalue(H.gt(0).sum() - 120).values)
        trimmed = float((X - module.decode(H * (H > theta))).square().mean())
    stopper = Plateau(X)
    assert stopper.validation_re(module) == pytest.approx(raw, rel=1e-5) and len(calls) == 1
    stopper = Plateau(X, target_l0=2)
    assert stopper.validation_re(module) == pytest.approx(trimmed, rel=1e-5)
    assert stopper.lowest_raw == pytest.approx(raw, rel=1e-5) and len(calls) == 3
