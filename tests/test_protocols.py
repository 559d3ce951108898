"""The protocol registry: a comparison protocol is a folder and one registration; the runner
asks each for its claims and figures, and the report renders each one's section. A toy
protocol is registered here, in the test itself."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from psae.cli import main  # noqa: E402
from psae.reproduce import protocols  # noqa: E402
from psae.reproduce.cells import Planned  # noqa: E402
from psae.reproduce.drawing import save_figure  # noqa: E402
from psae.reproduce.protocols import CellRules, Protocol  # noqa: E402
from psae.reproduce.render import show_figure  # noqa: E402


def _claims(results):
    if not results["final"]:  # a run without the paper protocol's fits
        return None
    re = sorted(c["test"]["RE"] for c in results["final"])
    return [{"id": "toy", "claim": "RE is finite", "held": all(r == r for r in re),
             "detail": f"lowest RE {re[0]:.4g}"}]


def _figures(results, out_dir):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([c["test"]["RE"] for c in results["final"]])
    try:
        return {"toy": [save_figure(fig, out_dir, "toy_re")]}
    finally:
        plt.close(fig)


def _section(page):
    page.doc.heading(2, "Toy protocol: RE of every final fit")
    for row in page.results["toy_claims"]:
        page.doc.para(f"{row['claim']}: {row['detail']}")
    for rel in page.figures.get("toy", []):
        show_figure(page, rel, "RE of each final fit", None)


def _broken_figures(results, out_dir):
    raise RuntimeError("no display")


TOY = Protocol("toy", "toy_claims", holds=lambda r: bool(r.get("final")), claims=_claims,
               figures=_figures, section=_section, order=5)
BROKEN = Protocol("broken", "broken_claims", holds=lambda r: False, claims=lambda r: None,
                  figures=_broken_figures, section=_section)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    protocols.register(TOY)
    protocols.register(BROKEN)
    try:
        out = tmp_path_factory.mktemp("toy") / "run"
        assert main(["reproduce", "--quick", "--models", "rae,psae", "--epochs", "4",
                     "--quiet", "--out", str(out)]) == 0
        yield out, json.loads((out / "results.json").read_text())
    finally:
        protocols.unregister("toy")
        protocols.unregister("broken")


def test_a_registered_protocol_gets_its_claims_figures_and_section(run):
    out, res = run
    assert res["toy_claims"][0]["held"] is True and "broken_claims" not in res
    assert res["figures"]["toy"] == ["figures/toy_re.png"]
    assert (out / "figures" / "toy_re.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    # its order (5) puts it before the paper protocol's section (20)
    assert html.index("Toy protocol: RE of every final fit") < html.index("Paper protocol")
    assert html.count("data:image/png;base64,") >= 2
    assert "Toy protocol" in (out / "report.md").read_text()


def test_a_protocol_whose_figures_fail_costs_no_numbers(run):
    out, res = run
    assert res["figure_errors"] == {"broken": "RuntimeError: no display"}
    assert res["final"] and res["claims"]  # the other protocols' results are all there
    md = (out / "report.md").read_text()
    assert "figure file" not in md  # nothing else went missing
    assert "the broken protocol's figures failed: RuntimeError: no display" in md


def test_names_are_unique_and_built_in_protocols_stay():
    with pytest.raises(ValueError, match="registered already"):
        protocols.register(Protocol("paper", "claims", bool, bool, bool, bool))
    with pytest.raises(ValueError, match="stores its claims"):
        protocols.register(Protocol("paper2", "matched_claims", bool, bool, bool, bool))
    with pytest.raises(ValueError, match="built in"):
        protocols.unregister("matched")
    names = [p.name for p in protocols.registered()]
    assert names.index("matched") < names.index("paper")  # the matched view comes first


# --- a protocol that fits cells of its own: RAE at half the hidden size, scored on test ------
def _half_plan(cells):
    return [Planned(name, "rae", "half", None, s, 1.0) for name in cells.cfg.names
            for s in cells.seeds]


def _half_estimator(cells, planned):
    from psae import SparseAutoencoder

    proto = cells.cfg.protocol(planned.dataset)
    return SparseAutoencoder(n_components=proto.n_components // 2, penalty="none", epochs=3,
                             random_state=planned.seed, threads=1)


def _half_run(cells, planned):
    key = f"{planned.dataset}__rae__half__seed{planned.seed}"
    if cells.resumed(key, {}, planned.seed):
        return key
    cell = {"dataset": planned.dataset, "model": "rae", "kind": "half", "point": None,
            "seed": planned.seed, "params": {}}
    if (fitted := cells.fit(cell, key, _half_estimator(cells, planned), "test")) is not None:
        cells.keep_test(cell, key, fitted)
    return cells.write(cell, key)


def _half_section(page):
    page.doc.heading(2, "Half protocol")
    for row in page.results["half_claims"]:
        page.doc.para(f"{row['claim']}: {row['detail']}")


HALF = Protocol(
    "half", "half_claims", holds=lambda r: bool(r.get("half")),
    claims=lambda r: [{"id": "half", "claim": "RAE at half width fits", "held": True,
                       "detail": f"{len(r['half'])} fits"}] if r.get("half") else None,
    figures=lambda r, out: {}, section=_half_section, order=7,
    cells=CellRules(kinds=("half",), plan=_half_plan, estimator=_half_estimator,
                    run=_half_run, fingerprint=lambda cfg: {"half": {"epochs": 3}},
                    gather=lambda cfg, rows: {"half": sorted(rows, key=lambda c: c["seed"])}
                    if rows else {}))


def test_a_registered_protocol_plans_fits_and_resumes_its_own_cells(tmp_path):
    out = tmp_path / "run"
    args = ["reproduce", "--quick", "--protocol", "half", "--seeds", "2", "--quiet",
            "--out", str(out)]
    protocols.register(HALF)
    try:
        assert main(args) == 0
        res = json.loads((out / "results.json").read_text())
        assert [c["seed"] for c in res["half"]] == [0, 1]
        assert all(c["test"]["RE"] > 0 and c["n_epochs"] == 3 for c in res["half"])
        assert res["grid"] == [] and res["final"] == [] and "matched" not in res  # not run
        assert res["half_claims"][0]["detail"] == "2 fits"
        assert "Half protocol" in (out / "report.md").read_text()
        fp = json.loads((out / "run.json").read_text())["fingerprint"]
        assert fp["protocol"] == "half" and fp["half"] == {"epochs": 3} and "grids" not in fp
        def stamps():  # an atomic rewrite would give a cell file a new inode
            return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
                    for p in (out / "cells").glob("[!.]*.json")}

        before = stamps()
        assert len(before) == 2
        assert main(args) == 0  # the same command again fits nothing
        assert stamps() == before
        log = (out / "log.txt").read_text()
        assert "half__seed0 already done" in log and "half__seed1 already done" in log
        (out / "cells" / "digits__rae__half__seed1.json").unlink()
        assert main(args) == 0  # a lost cell is fitted again, and only that one
        after = stamps()
        assert after["digits__rae__half__seed0.json"] == before["digits__rae__half__seed0.json"]
        assert "digits__rae__half__seed1.json" in after
    finally:
        protocols.unregister("half")
    assert main(args) == 2  # unregistered: --protocol half is refused


def test_each_cell_kind_belongs_to_one_protocol():
    clash = Protocol("grid2", "grid2_claims", bool, bool, bool, bool,
                     cells=CellRules(("grid",), *5 * [None]))
    with pytest.raises(ValueError, match="fits cells of kind grid"):
        protocols.register(clash)
    with pytest.raises(ValueError, match="'both' names"):
        protocols.register(Protocol("both", "both_claims", bool, bool, bool, bool))


def test_a_both_run_fits_the_paper_cells_before_the_matched_ones(tmp_path):
    from psae.reproduce.cell_runner import Cells
    from psae.reproduce.runner import RunConfig

    cfg = RunConfig(datasets=["digits"], models=["rae", "topk"], out=tmp_path / "x",
                    quick=True, protocol_name="both")
    kinds = [c.kind for c in Cells(cfg, {"digits": cfg.splits("digits")}, [0, 1]).plan()]
    first_matched = kinds.index("matched")
    assert {"grid", "final"} == set(kinds[:first_matched])
    assert set(kinds[first_matched:]) == {"matched"}
