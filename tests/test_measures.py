"""The measure registry: one record per measure, read by ``psae evaluate``, the cells of
``psae reproduce``, its tables, summaries and CSV; a new measure is one record, registered here
in the test itself."""

import csv
import io
import json

import numpy as np
import pytest

from psae import measures
from psae.cli import main
from psae.measures import Measure


def _largest(X, H, X_hat):
    return float(np.abs(H).max())


TOY = Measure("max_code", "largest |h|", None, "largest activation of a test code",
              compute=_largest)


@pytest.fixture()
def toy():
    measures.register(TOY, views=("paper_table", "summary", "csv"))
    yield TOY
    measures.unregister("max_code")


def test_register_checks_names_and_unregister_removes_it_everywhere(toy):
    with pytest.raises(ValueError, match="already registered"):
        measures.register(TOY)
    with pytest.raises(ValueError, match="unknown views"):
        measures.register(Measure("other", "o", None, "o", compute=_largest), views=("nowhere",))
    with pytest.raises(ValueError, match="compute"):
        measures.register(Measure("other", "o", None, "o"))
    with pytest.raises(ValueError, match="psae's own key"):
        measures.register(Measure("L0", "L0", None, "L0", compute=_largest))
    with pytest.raises(ValueError, match="cannot be removed"):
        measures.unregister("CA")
    assert "max_code" in measures.VIEWS["csv"] and measures.computed() == [TOY]
    measures.unregister("max_code")
    assert "max_code" not in measures.MEASURES
    assert all("max_code" not in keys for keys in measures.VIEWS.values())
    measures.register(TOY, views=("paper_table", "summary", "csv"))  # the fixture removes it


def test_a_registered_measure_reaches_evaluate_cells_summary_table_and_csv(toy, tmp_path,
                                                                           capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "--quick", "--models", "rae,psae", "--epochs", "4", "--quiet",
                 "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    for c in res["final"]:
        assert c["test"]["max_code"] > 0  # sigmoid codes of a fitted model
    st = res["summary"]["digits"]["psae"]["max_code"]
    assert st["n"] == 1 and st["mean"] == pytest.approx(
        next(c["test"]["max_code"] for c in res["final"] if c["model"] == "psae"))
    assert "<th>largest |h|</th>" in (out / "report.html").read_text()  # a table column
    assert r"largest \|h\|" in (out / "report.md").read_text()
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert all(r["max_code"] for r in rows if r["kind"] == "final")
    # psae evaluate prints it and writes it to its JSON
    capsys.readouterr()
    model = out / "models" / "digits__psae"
    assert main(["evaluate", "--model", str(model), "--data", "digits"]) == 0
    printed = capsys.readouterr().out
    assert "largest |h|" in printed
    assert json.loads(printed.strip().splitlines()[-1])["max_code"] > 0
