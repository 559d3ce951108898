"""Write a reproduction's report: one self-contained HTML page and a Markdown twin.

``report.html`` embeds every figure as a base64 PNG data URI and carries its CSS inline (no
external assets, no scripts); ``report.md`` holds the same tables and links the figures as
``figures/*.png``. Both files are written atomically (temp file in the same folder, then
``os.replace``).
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from ..fileio import atomic_write
from .claims import dataset_keys, dataset_label, evaluate_claims, metric_stats, model_label
from .figures import FIGURE_KINDS, figure_caption, make_figures, missing_pieces

__all__ = ["write_report"]

# (metric key, column title, higher is better)
RESULT_COLUMNS = (
    ("RE", "RE", False),
    ("S", "S", True),
    ("SSD", "SSD", False),
    ("CA", "CA", True),
    ("L0_mean", "mean L0", False),
    ("dead_units", "dead units", False),
)

PROTOCOL_TEXT = (
    "Preprocessing: a per-dimension z-score fitted on the training data only (a constant "
    "dimension gets std 1), clipped to ±3 and mapped affinely onto [0.1, 0.9]; the same map is "
    "applied to the test data.",
    "Model selection: each model's hyperparameters are chosen by validation CA (softmax "
    "classifier accuracy on the codes) on a validation split carved from the training set.",
    "Final scoring: the selected point is retrained on the full training set once per seed and "
    "scored once on the test set. The test set never chooses anything.",
    "Metrics: RE = mean per-sample squared error / D; S = mean Hoyer sparseness of the test "
    "codes; SSD = population std of per-sample S (all-zero codes left out of S and SSD, and "
    "counted); CA = accuracy of multinomial logistic regression trained on the training codes; "
    "L0 = active units per sample (|h| above the threshold); dead units = fraction of units "
    "never active on the test set.",
)

SECTION_TITLES = {
    "fig2": "Fig. 2a–d: the paper's four measures",
    "sparseness": "Per-sample sparseness distributions",
    "l0": "Per-sample L0 distributions",
    "filters": "Learned decoder filters",
    "recons": "Reconstructions",
    "curves": "Training curves",
    "sweep": "Validation sweeps (trade-off fronts)",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.banner { background: #fde2e1; border: 2px solid #c0392b; color: #7b1d14; padding: .8em 1em;
          font-weight: bold; margin: 1em 0; border-radius: 4px; }
.ok { color: #1e7e34; font-weight: bold; } .bad { color: #b02a1a; font-weight: bold; }
.na { color: #777; }
figure { margin: 1.2em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; margin-top: .3em; }
code { background: #f4f4f4; padding: 0 .25em; border-radius: 3px; }
"""

# a table cell: plain text, or (text, bold)
Cell = Any


# ---------------------------------------------------------------------------------- formatting

def _fmt_num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4g}"
    return str(v)


def _fmt_value(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        try:
            return json.dumps(v, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(v)
    return _fmt_num(v)


def _fmt_params(params: Any) -> str:
    if not isinstance(params, dict):
        return _fmt_value(params)
    if not params:
        return "(none)"
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def _mean_std(st: tuple[float, float, int] | None) -> str:
    if st is None:
        return "—"
    if st[2] == 1:  # one seed: no spread to show
        return f"{st[0]:.4g}"
    return f"{st[0]:.4g} ± {st[1]:.2g}"


def _held_text(held: bool | None) -> str:
    return "✓" if held is True else "✗" if held is False else "n/a"


# ---------------------------------------------------------------------------------- content

def _run_info(results: dict) -> list[tuple[str, str]]:
    machine = results.get("machine") or {}
    mach = ", ".join(f"{k}: {_fmt_value(v)}" for k, v in machine.items()) or "—"
    secs = results.get("seconds")
    secs_txt = "—" if secs is None else f"{float(secs):.1f} s ({float(secs) / 60:.1f} min)"
    return [
        ("command", str(results.get("command") or "—")),
        ("psae version", str(results.get("psae_version") or "—")),
        ("machine", mach),
        ("started", str(results.get("started") or "—")),
        ("finished", str(results.get("finished") or "not finished (partial results)")),
        ("wall time", secs_txt),
        ("seeds", _fmt_value(results.get("seeds"))),
        ("models", ", ".join(model_label(results, m) for m in results.get("models") or [])),
        ("L0 threshold", _fmt_value(results.get("threshold"))),
        ("quick (cut-down) run", "yes" if results.get("quick") else "no"),
    ]


QUICK_BANNER = ("QUICK RUN: this is a cut-down reproduction (smaller data, fewer epochs, "
                "smaller grids). Its numbers are NOT the paper-scale result; use them only to "
                "check that the pipeline works.")


def _dataset_tables(results: dict, ds: str) -> list[tuple[str, list[str], list[list[Cell]]]]:
    info = (results.get("datasets") or {}).get(ds) or {}
    tables = []
    desc_keys = ("label", "shape", "n_features", "n_train", "n_val", "n_test", "note")
    desc = [[k, _fmt_value(info[k])] for k in desc_keys if k in info and info[k] not in ("", None)]
    desc += [[k, _fmt_value(v)] for k, v in info.items()
             if k not in (*desc_keys, "protocol", "grid") and v not in ("", None)]
    if desc:
        tables.append(("Data", ["field", "value"], desc))
    proto = info.get("protocol") or {}
    if isinstance(proto, dict) and proto:
        tables.append(("Protocol", ["parameter", "value"],
                       [[str(k), _fmt_value(v)] for k, v in proto.items()]))
    grid = info.get("grid") or {}
    if isinstance(grid, dict) and grid:
        rows = []
        for m, pts in grid.items():
            pts = pts if isinstance(pts, list) else [pts]
            txt = "; ".join(f"[{i}] {_fmt_params(p)}" for i, p in enumerate(pts))
            rows.append([model_label(results, m), str(len(pts)), txt])
        tables.append(("Validation grid", ["model", "points", "grid points"], rows))
    return tables


def _models_for(results: dict, ds: str) -> list[str]:
    models = list(results.get("models") or [])
    for m in ((results.get("summary") or {}).get(ds) or {}):
        if m not in models:
            models.append(m)
    return models


def _results_table(results: dict, ds: str) -> tuple[list[str], list[list[Cell]]]:
    models = [m for m in _models_for(results, ds)
              if any(metric_stats(results, ds, m, c[0]) for c in RESULT_COLUMNS)]
    stats = {(m, c): metric_stats(results, ds, m, c) for m in models for c, _, _ in RESULT_COLUMNS}
    best = {}
    for c, _, higher in RESULT_COLUMNS:
        vals = [st[0] for m in models if (st := stats[m, c]) is not None]
        if vals:
            best[c] = max(vals) if higher else min(vals)
    rows: list[list[Cell]] = []
    for m in models:
        row: list[Cell] = [model_label(results, m)]
        for c, _, _ in RESULT_COLUMNS:
            st = stats[m, c]
            row.append((_mean_std(st), st is not None and st[0] == best.get(c)))
        n = max((st[2] for c, _, _ in RESULT_COLUMNS if (st := stats[m, c])), default=0)
        row.append(str(n))
        rows.append(row)
    return ["model"] + [t for _, t, _ in RESULT_COLUMNS] + ["seeds"], rows


def _zero_code_note(results: dict, ds: str) -> str:
    parts = []
    for m in _models_for(results, ds):
        counts = [int(z) for r in results.get("final") or []
                  if r.get("dataset") == ds and r.get("model") == m
                  and isinstance(z := (r.get("test") or {}).get("zero_codes"), (int, float))
                  and not (isinstance(z, float) and math.isnan(z))]
        if counts and any(counts):
            parts.append(f"{model_label(results, m)}: {counts}")
    return ("All-zero test codes per seed (left out of S and SSD): " + "; ".join(parts)
            if parts else "")


def _claims_table(results: dict) -> tuple[list[str], list[list[Cell]]]:
    rows: list[list[Cell]] = []
    for r in evaluate_claims(results):
        rows.append([r["claim"], dataset_label(results, r["dataset"]), _held_text(r["held"]),
                     "yes" if r["clear"] else "no", r["detail"]])
    return ["claim", "data set", "held", "clear", "detail"], rows


def _selected_table(results: dict) -> tuple[list[str], list[list[Cell]]]:
    rows: list[list[Cell]] = []
    for ds in dataset_keys(results):
        for m in _models_for(results, ds):
            runs = [r for r in results.get("final") or []
                    if r.get("dataset") == ds and r.get("model") == m]
            sel = [g for g in results.get("grid") or []
                   if g.get("dataset") == ds and g.get("model") == m and g.get("selected")]
            if not runs and not sel:
                continue
            params = runs[0].get("params") if runs else sel[0].get("params")
            cas = [float(g["val"]["CA"]) for g in sel
                   if isinstance(g.get("val"), dict) and isinstance(g["val"].get("CA"),
                                                                     (int, float))]
            val_ca = f"{sum(cas) / len(cas):.4g}" if cas else "—"
            point = sel[0].get("point") if sel else None
            epochs = sorted({r.get("n_epochs") for r in runs if r.get("n_epochs") is not None})
            secs = [float(r["fit_seconds"]) for r in runs
                    if isinstance(r.get("fit_seconds"), (int, float))]
            rows.append([dataset_label(results, ds), model_label(results, m),
                         _fmt_params(params), _fmt_value(point), val_ca,
                         ", ".join(str(e) for e in epochs) or "—",
                         f"{sum(secs) / len(secs):.1f}" if secs else "—"])
    return ["data set", "model", "selected hyperparameters", "grid point", "validation CA",
            "epochs", "fit s (mean)"], rows


# ---------------------------------------------------------------------------------- renderers

def _cell(c: Cell) -> tuple[str, bool]:
    if isinstance(c, tuple):
        return str(c[0]), bool(c[1])
    return str(c), False


def _html_table(headers: list[str], rows: list[list[Cell]], numeric_from: int = 99) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        tds = []
        for i, c in enumerate(row):
            text, bold = _cell(c)
            t = html.escape(text)
            if bold:
                t = f"<b>{t}</b>"
            if text in ("✓", "✗"):
                t = f'<span class="{"ok" if text == "✓" else "bad"}">{t}</span>'
            cls = ' class="num"' if i >= numeric_from else ""
            tds.append(f"<td{cls}>{t}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _md_escape(text: str) -> str:
    """Escape Markdown/HTML metacharacters for a table cell or inline text."""
    for ch in "\\|<>*`[]":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[Cell]]) -> str:
    out = ["| " + " | ".join(_md_escape(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        cells = []
        for c in row:
            text, bold = _cell(c)
            t = _md_escape(text)
            cells.append(f"**{t}**" if bold and t else t)
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------- report

def write_report(
    results: dict, out_dir: Path, figures: dict[str, list[str]] | None = None
) -> tuple[Path, Path]:
    """Write ``out_dir/report.html`` and ``out_dir/report.md``; return their paths.

    When ``figures`` (as returned by :func:`~psae.reproduce.figures.make_figures`) is None the
    figures are drawn first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if figures is None:
        figures = make_figures(results, out_dir)
    title = "psae reproduction: sparse autoencoders with a squared smoothed-L0 penalty"
    h: list[str] = []
    md: list[str] = []

    def heading(level: int, text: str) -> None:
        h.append(f"<h{level}>{html.escape(text)}</h{level}>")
        md.append("#" * level + " " + text + "\n")

    def para(text: str) -> None:
        h.append(f"<p>{html.escape(text)}</p>")
        md.append(text + "\n")

    def table(headers: list[str], rows: list[list[Cell]], numeric_from: int = 99,
              empty: str = "") -> None:
        if not rows and empty:  # say so instead of printing a header-only table
            para(empty)
            return
        h.append(_html_table(headers, rows, numeric_from))
        md.append(_md_table(headers, rows) + "\n")

    heading(1, title)
    if results.get("quick"):
        h.append(f'<div class="banner">⚠ {html.escape(QUICK_BANNER)}</div>')
        md.append(f"> **⚠ {QUICK_BANNER}**\n")
    if not results.get("finished"):
        para("Note: the run has not finished; the report shows partial results.")
    heading(2, "Run")
    table(["item", "value"], [[k, v] for k, v in _run_info(results)])

    heading(2, "Protocol")
    for text in PROTOCOL_TEXT:
        para(text)
    for ds in dataset_keys(results):
        heading(3, dataset_label(results, ds))
        for name, headers, rows in _dataset_tables(results, ds):
            para(f"{name}:")
            table(headers, rows)

    heading(2, "Results (test set, mean ± std over seeds)")
    para("Bold marks the best value per column: lowest RE, SSD, mean L0 and dead units; "
         "highest S and CA. Mean L0 counts active units per sample (|h| > threshold).")
    for ds in dataset_keys(results):
        heading(3, dataset_label(results, ds))
        headers, rows = _results_table(results, ds)
        table(headers, rows, numeric_from=1, empty="No results for this data set.")
        note = _zero_code_note(results, ds)
        if note:
            para(note)

    heading(2, "The paper's claims")
    para("Held: the means over seeds are ordered as the paper claims (n/a: a model is "
         "missing). Clear: in addition, the mean ± std intervals of the decisive pair (the "
         "claimed winner and its closest rival) do not overlap (never with a single seed).")
    headers, rows = _claims_table(results)
    table(headers, rows, empty="No claims could be evaluated.")

    heading(2, "Selected hyperparameters")
    para("Chosen per (data set, model) by validation CA; validation CA is that of the selected "
         "grid point (mean over the seeds it was run with).")
    headers, rows = _selected_table(results)
    table(headers, rows, empty="No runs.")

    heading(2, "Figures")
    missing_figs = []
    kinds = [k for k in FIGURE_KINDS if k in figures] + [k for k in figures
                                                          if k not in FIGURE_KINDS]
    for kind in kinds:
        paths = figures.get(kind) or []
        if not paths:
            continue
        heading(3, SECTION_TITLES.get(kind, kind))
        for rel in paths:
            caption = figure_caption(results, rel)
            uri = _data_uri(out_dir / rel)
            if uri is None:
                missing_figs.append(rel)
                continue
            h.append(f'<figure><img src="{uri}" alt="{html.escape(Path(rel).stem)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            md.append(f"![{_md_escape(Path(rel).stem)}]({rel})\n\n*{caption}*\n")
    notes = missing_pieces(results, out_dir) + [f"figure file {p} not found"
                                                 for p in missing_figs]
    if notes:
        heading(2, "Missing pieces")
        h.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
        md.append("\n".join(f"- {n}" for n in notes) + "\n")

    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(h) + "\n</body>\n</html>\n")
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write(html_path, page)
    atomic_write(md_path, "\n".join(md))
    return html_path, md_path
