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
from psae.reproduce.drawing import save_figure  # noqa: E402
from psae.reproduce.protocols import Protocol  # noqa: E402
from psae.reproduce.render import show_figure  # noqa: E402


def _claims(results):
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
