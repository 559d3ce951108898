"""The sparsity registry: one record per mechanism, read by the estimator, objective, CLI,
reproduce and docs; a new mechanism is one record, registered here in the test itself."""

import json

import numpy as np
import pytest
import torch

from psae import SparseAutoencoder, sparsity
from psae.cli import build_parser, main
from psae.penalties import kl_penalty, smoothed_l0
from psae.reproduce.labels import label_of, models, penalty_of
from psae.reproduce.paper.settings import grid_for
from psae.training.objective import Objective


def _squared_code(h, sigma, settings, **extra):
    return h.square().sum(dim=1).mean()


TOY = sparsity.Mechanism(
    name="toy", label="SAE+L2²", summary="toy: squared L2 of each code",
    formula="(1/2N) Σ_j ‖x_j − y_j‖² + (β/N) Σ_j ‖h_j‖²", params=("beta",),
    defaults={"beta": 0.05}, penalty=_squared_code, weights=lambda s: (0.5, float(s["beta"])),
    grid=({"beta": 0.01}, {"beta": 0.1}), quick_grid=({"beta": 0.1},),
)


@pytest.fixture()
def toy():
    sparsity.register(TOY)
    yield TOY
    sparsity.unregister("toy")


def test_registry_lists_the_paper_models_in_order():
    assert sparsity.names()[:5] == ("none", "l1", "kl", "sql0", "l0")
    assert [sparsity.get(n).key for n in sparsity.names()][:5] == ["rae", "l1", "kl", "psae",
                                                                   "l0"]
    assert {"topk", "batchtopk", "jumprelu"} <= set(sparsity.names())
    assert sparsity.get("sql0").uses_sigma and not sparsity.get("l1").uses_sigma
    with pytest.raises(ValueError, match="unknown penalty 'bogus'"):
        sparsity.get("bogus")
    with pytest.raises(ValueError, match="registered"):
        sparsity.register(sparsity.get("l1"))


def test_a_toy_mechanism_works_through_estimator_save_load_and_reproduce(toy, digits, tmp_path):
    Xtr, Xte = digits[0], digits[1]
    a = SparseAutoencoder(n_components=20, penalty="toy", epochs=6, random_state=0,
                          device="cpu").fit(Xtr)
    b = SparseAutoencoder(n_components=20, penalty="toy", beta=5.0, epochs=6, random_state=0,
                          device="cpu").fit(Xtr)
    # its penalty is what training minimised: a heavier weight gives smaller codes
    assert (b.transform(Xte) ** 2).sum(1).mean() < 0.5 * (a.transform(Xte) ** 2).sum(1).mean()
    assert a.history_[-1]["sparsity"] > 0
    a.save(tmp_path / "toy")
    loaded = SparseAutoencoder.load(tmp_path / "toy")
    assert loaded.penalty == "toy"
    np.testing.assert_array_equal(loaded.transform(Xte), a.transform(Xte))
    assert "toy" in models() and penalty_of("toy") == "toy" and label_of("toy") == "SAE+L2²"
    assert grid_for("toy") == [{"beta": 0.01}, {"beta": 0.1}]


def test_a_toy_mechanism_through_psae_fit(toy, tmp_path, digits, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, X=digits[0][:300])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "toy: toy: squared L2 of each code" in help_text and ",toy}" in help_text
    assert main(["fit", "--data", str(data), "--out", str(tmp_path / "m"), "--penalty", "toy",
                 "--beta", "0.2", "--n-components", "8", "--epochs", "3", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["penalty"] == "toy"
    import psae

    assert psae.load(tmp_path / "m")[-1].beta == 0.2


def test_objective_is_a_pure_function_of_tensors_matching_the_formulas():
    g = torch.Generator().manual_seed(0)
    x, y, h = (torch.rand(16, 5, generator=g, dtype=torch.float64),
               torch.rand(16, 5, generator=g, dtype=torch.float64),
               torch.rand(16, 7, generator=g, dtype=torch.float64))
    recon = ((x - y) ** 2).sum(1).mean()
    l0 = smoothed_l0(h, 0.3)
    expect = {
        "none": 0.5 * recon,
        "l1": 0.5 * recon + 0.003 * h.abs().sum(1).mean(),
        "kl": 0.5 * recon + 0.01 * kl_penalty(h, 0.05),
        "sql0": 0.5 * (l0 ** 2).mean() + 0.5 * 10.0 * recon,
        "l0": 0.5 * l0.mean() + 0.5 * 10.0 * recon,
    }
    for name, value in expect.items():
        total, r, _ = Objective.of(name, lam=10.0, beta=None, rho=0.05)(x, h, y, 0.3)
        torch.testing.assert_close(total, value)
        torch.testing.assert_close(r, recon)


def test_estimator_docstring_table_comes_from_the_registry():
    for name in sparsity.names():
        m = sparsity.get(name)
        assert f'``"{name}"``' in SparseAutoencoder.__doc__ and m.formula in \
            SparseAutoencoder.__doc__


def test_docs_protocol_embeds_the_registry_table():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    block = doc.split("<!-- registry:begin -->\n")[1].split("\n<!-- registry:end -->")[0]
    assert block == sparsity.markdown_table(), \
        "docs/protocol.md is stale: put `psae models --markdown` between the markers"


def test_one_model_two_spellings_accepted_everywhere():
    """fit took --penalty sql0 and reproduce --models psae: each now takes both."""
    from psae import sparsity
    from psae.cli.reproduce import _models
    from psae.errors import ParameterError

    assert sparsity.get("psae") is sparsity.get("sql0")
    assert sparsity.get("rae") is sparsity.get("none")
    assert sparsity.by_key("sql0") is sparsity.by_key("psae")
    assert _models("sql0,psae,none,topk") == ["psae", "rae", "topk"]
    with pytest.raises(ParameterError, match="model names"):
        sparsity.get("bogus")
