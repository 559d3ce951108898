"""Every steered model lands on its target mean L0 (issue 19): training aims a little above
it and an inference threshold chosen on held-out rows trims the codes onto it; the threshold
is saved with the model and applied by transform (raw codes on request)."""

import numpy as np
import pytest

import psae
from psae import SparseAutoencoder, metrics
from psae.training.fit import calibrate

STEERED = ["l1", "kl", "l0", "sql0", "jumprelu", "sqjumprelu"]


@pytest.mark.parametrize("penalty", STEERED)
def test_every_steered_model_lands_within_ten_percent_on_held_out_rows(digits, penalty):
    Xtr, Xte = digits[0], digits[1]
    for seed in range(3):
        m = SparseAutoencoder(n_components=64, penalty=penalty, target_l0=12, epochs=40,
                              random_state=seed, device="cpu", threads=1).fit(Xtr)
        l0 = metrics.l0_stats(m.transform(Xte))["mean"]
        assert abs(l0 / 12 - 1) <= 0.10, (penalty, seed, l0)


def test_calibrated_threshold_is_exact_and_never_adds_activity():
    rng = np.random.default_rng(0)
    H = rng.uniform(size=(200, 50)) * (rng.uniform(size=(200, 50)) < 0.4)
    theta = metrics.calibrated_threshold(H, 7.0)
    assert metrics.l0_stats(H, theta)["mean"] == pytest.approx(7.0)
    assert metrics.calibrated_threshold(H, 45.0) == metrics.DEFAULT_THRESHOLD  # too few
    # with signs and ties: the count nearest the target that any threshold gives (the
    # (target·N + 1)-th largest |h| cuts every value tied there, which can fall far short)
    H = np.round(rng.normal(size=(300, 40)) * (rng.uniform(size=(300, 40)) < 0.3), 2)
    A = np.abs(H)
    for target in (0.5, 3.0, 8.0):
        keep = int(round(target * 300))
        theta = metrics.calibrated_threshold(H, target)
        best = min(abs(int((A > t).sum()) - keep) for t in np.unique(A)
                   if t >= metrics.DEFAULT_THRESHOLD)
        assert theta >= metrics.DEFAULT_THRESHOLD
        assert abs(int((A > theta).sum()) - keep) == best


def test_threshold_is_saved_applied_and_can_be_skipped(digits, tmp_path):
    Xtr, Xte = digits[0], digits[1]
    m = SparseAutoencoder(n_components=64, penalty="sql0", target_l0=8, epochs=40,
                          random_state=0, device="cpu", early_stopping=True).fit(Xtr)
    theta = m.inference_threshold_
    assert theta is not None and theta > metrics.DEFAULT_THRESHOLD
    H, raw = m.transform(Xte), m.transform(Xte, raw=True)
    assert np.all((H == 0) | (np.abs(H) > theta)) and np.array_equal(H[H != 0], raw[H != 0])
    assert metrics.l0_stats(raw)["mean"] > metrics.l0_stats(H)["mean"]
    psae.save(m, tmp_path / "m")
    back = psae.load(tmp_path / "m")
    assert back.inference_threshold_ == theta
    np.testing.assert_array_equal(back.transform(Xte), H)
    plain = SparseAutoencoder(n_components=64, penalty="sql0", target_l0=8, epochs=40,
                              random_state=0, device="cpu", raw_codes=True).fit(Xtr)
    assert plain.inference_threshold_ is None


def test_a_code_already_under_its_target_is_still_trimmed_to_exact_zeros(digits):
    """OPTDIGITS, PSAE at L0 5, one seed of three: the raw codes' L0 was already under the
    target, no threshold was kept, and the fit was judged on raw sigmoid codes (FVU 0.105
    against 0.65 and 0.92 for the trimmed codes of the other seeds)."""
    Xtr, Xte = digits[0], digits[1]
    m = SparseAutoencoder(n_components=32, penalty="sql0", target_l0=4, epochs=8,
                          random_state=0, device="cpu").fit(Xtr)
    m.set_params(target_l0=32)  # a target the codes are under at the L0 threshold
    theta = calibrate(m, Xtr, None, 0)
    assert theta == metrics.DEFAULT_THRESHOLD
    m.inference_threshold_ = theta
    H, raw = m.transform(Xte), m.transform(Xte, raw=True)
    assert np.count_nonzero(raw) > np.count_nonzero(H)  # sigmoid: no exact zeros raw
    assert np.all((H == 0) | (np.abs(H) > theta))
    assert metrics.l0_stats(H)["mean"] == metrics.l0_stats(raw)["mean"]  # the same L0


def test_raw_codes_without_a_target_is_an_option_without_effect(digits):
    with pytest.raises(psae.ParameterError, match="raw_codes"):
        SparseAutoencoder(n_components=16, penalty="topk", raw_codes=True, device="cpu").fit(
            digits[0])


def test_batchtopk_with_held_out_rows_chooses_its_threshold_on_them(digits):
    Xtr, Xte = digits[0], digits[1]
    m = SparseAutoencoder(n_components=64, penalty="batchtopk", k=8, epochs=40, random_state=0,
                          device="cpu", early_stopping=True).fit(Xtr)
    assert m.inference_threshold_ is not None
    assert abs(metrics.l0_stats(m.transform(Xte))["mean"] / 8 - 1) <= 0.10
    raw = SparseAutoencoder(n_components=64, penalty="batchtopk", k=8, epochs=40,
                            random_state=0, device="cpu", early_stopping=True,
                            raw_codes=True).fit(Xtr)
    assert raw.inference_threshold_ is None
    assert SparseAutoencoder(n_components=64, penalty="batchtopk", k=8, epochs=40,
                             random_state=0, device="cpu").fit(Xtr).inference_threshold_ is None


def test_a_pinned_knob_hands_its_steps_to_the_spare_and_takes_them_back():
    """KL's ρ at its floor cannot make codes sparser (the KL gradient on a busy unit is about
    β, whatever ρ): the controller moves β instead, never below its start, and gives those
    moves back before ρ rises again."""
    from psae.training.monitor import L0Controller

    settings = {"rho": 1e-4, "beta": 0.01}
    c = L0Controller(settings, ("rho", -1.0), target=10.0, period=1, lead=0.0,
                     bounds=(1e-4, 0.5), spare=("beta", +1.0), spare_bounds=(0.0, 100.0))
    c.start(1)
    c.update(10.0)  # the first period only fixes where the ramp starts
    for _ in range(3):
        c.update(40.0)  # far too dense, ρ already at its floor
    assert settings["rho"] == 1e-4 and settings["beta"] > 0.01 * 2
    for _ in range(20):
        c.update(2.0)  # now too sparse: β comes back to its start first, then ρ rises
    assert settings["beta"] == 0.01 and settings["rho"] > 1e-4
    no_spare = {"rho": 1e-4, "beta": 0.01}
    d = L0Controller(no_spare, ("rho", -1.0), target=10.0, period=1, lead=0.0,
                     bounds=(1e-4, 0.5))
    d.start(1)
    for value in (10.0, 40.0, 40.0, 40.0):
        d.update(value)
    assert no_spare == {"rho": 1e-4, "beta": 0.01}


def test_a_spare_knob_outside_its_bounds_is_refused_by_name():
    from psae.errors import ParameterError
    from psae.training.monitor import L0Controller

    with pytest.raises(ParameterError, match="beta"):
        L0Controller({"rho": 0.05, "beta": 500.0}, ("rho", -1.0), target=10.0,
                     spare=("beta", +1.0), spare_bounds=(0.0, 100.0))
