"""The matched protocol's part of the report: every model at the same exact mean L0."""

from __future__ import annotations

from ..labels import dataset_label
from ..render import Page, show_figure
from .figures import MATCHED_CAPTIONS
from .tables import (
    matched_answer,
    matched_claims_table,
    matched_raw_table,
    matched_sweep_table,
    matched_table,
)

__all__ = ["MATCHED_TEXT", "matched_section"]

MATCHED_TEXT = (
    "Every model is trained to each target mean L0 (|h| > 0.01 on the test set): TopK and "
    "BatchTopK take the target as k; the penalised models steer their penalty weight toward it "
    "during training (target_l0); RAE, dense, is the reference. Every fit stops when its "
    "validation RE has converged (a plateau lowers the step size, the next ends training). A "
    "model that missed a target by more than 10 % (in its mean over seeds or in any seed) is "
    "marked ✗ and left out of that target's comparisons. Mean ± std (population) over seeds; "
    "atom stability's over the pairs of seeds. S and SSD leave out the all-zero codes, which "
    "have their own column.")


def _exact_and_raw(doc, results: dict, ds: str) -> None:
    """The second view: the fits with an inference threshold on their raw codes, and what
    the threshold does to RE and CA (seed 0's sweep at the explorer's target)."""
    head, rows = matched_raw_table(results, ds)
    if rows:
        doc.para("Exact-sparse codes (the comparison above) against the raw codes of the same "
                 "fits, before the inference threshold θ zeroes the activations at or under it:",
                 css="note")
        doc.table(head, rows, numeric_from=2)
    target = ((results.get("matched_protocol") or {}).get(ds) or {}).get("explore_target")
    head, rows = matched_sweep_table(results, ds, str(target))
    if rows:
        doc.para(f"The threshold swept at target L0 {target} (seed 0): mean L0 · FVU · CA of "
                 "the codes trimmed at 0 (raw), θ/2, θ and 2θ. L0 counts |h| > 0.01 at every "
                 "threshold, as everywhere in this report, so codes trimmed below 0.01 hold "
                 "more non-zeros than it shows.", css="note")
        doc.table(head, rows, numeric_from=1)


def matched_section(page: Page) -> None:
    """The matched view first: every model at the same sparsity."""
    doc, results = page.doc, page.results
    doc.heading(2, "Matched sparsity: every model at the same mean L0")
    doc.para(MATCHED_TEXT)
    for ds in (results.get("matched_summary") or {}):
        label = dataset_label(results, ds)
        doc.heading(3, label, anchor=f"matched-{ds}")
        doc.para(matched_answer(results, ds), css="answer")
        for kind in ("matched", "matched_sweep", "matched_curves"):
            rel = f"figures/{kind}_{ds}.png"
            if rel in (page.figures.get(kind) or []):
                target = ((results.get("matched_protocol") or {}).get(ds) or {}) \
                    .get("explore_target")
                show_figure(page, rel, MATCHED_CAPTIONS[kind].format(ds=label, t=target), ds,
                            units=True)
        doc.table(*matched_table(results, ds, page.links.get(ds)), numeric_from=2,
                  empty="No matched results for this data set.")
        _exact_and_raw(doc, results, ds)
    doc.heading(3, "The claims at equal sparsity")
    doc.para("(a) does the square lower the spread of per-sample L0 at equal mean L0; (b) is "
             "PSAE best in CA and RE among the models at the target; (c) does PSAE's freedom to "
             "vary each sample's L0 buy CA or RE over TopK, whose L0 is fixed; (d) does the "
             "square cost JumpReLU anything in CA or RE (held: no worse); (e) do exact zeros "
             "(squared JumpReLU) beat PSAE's smoothed L0 in CA, RE and L0 spread. Clear: "
             "Welch's t-test over the seeds puts the two means apart at p < 0.05 (two-sided; "
             "with 3 seeds a difference must be about 3-4 times its standard error).")
    doc.table(*matched_claims_table(results), empty="No claims could be evaluated.")


