(function () {
"use strict";
const D = JSON.parse(document.getElementById("psae-data").textContent);
const U = D.units, M = D.M, LABELLED = !!D.classes;
const DENSE = new Set(D.overview.dense_units);
const $ = (sel) => document.querySelector(sel);
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ESC[c]);
const f1 = (v) => (+v).toFixed(1);
// markup of one element: el("rect", {x: 1}) or el("text", {x: 1}, "label"); attrs are trusted
function el(name, attrs, inner) {
  let s = "<" + name;
  for (const k in attrs) s += " " + k + '="' + attrs[k] + '"';
  return inner === undefined ? s + "/>" : s + ">" + inner + "</" + name + ">";
}
const svg = (w, h, body, label) => el("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h,
  role: "img", "aria-label": label || "chart" }, body);

// ---------- numbers ----------
function sig(v) {
  if (v === null || v === undefined) return "\u2014";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(+v.toPrecision(3));
}
function pct(v) {
  if (v === null || v === undefined) return "\u2014";
  const p = v * 100;
  if (p === 0) return "0 %";
  if (p < 1) return p.toPrecision(2) + " %";
  return p.toFixed(1) + " %";
}
const className = (c) => (c === null || c === undefined || c < 0) ? "\u2014" : D.classes[c];

// ---------- columns of the unit table ----------
const COLS = [
  { key: "unit", label: "Unit", get: (j) => j, show: (j) => String(j) },
  D.image ? { key: "atom", label: "Atom", atom: true } : null,
  { key: "freq", label: "Frequency", get: (j) => U.freq[j], show: pct,
    tip: "share of samples on which |h| > threshold" },
  { key: "mean", label: "Mean act.", get: (j) => U.mean[j], show: sig,
    tip: "mean h over the samples where the unit is active" },
  { key: "max", label: "Max |h|", get: (j) => U.max[j], show: sig },
  LABELLED ? { key: "sel", label: "Selectivity", get: (j) => U.sel[j], show: sig,
    tip: "normalised excess of the most over-represented class (0 = base rates, 1 = one class)" }
    : null,
  LABELLED ? { key: "cls", label: "Pref. class", get: (j) => (U.cls[j] < 0 ? null : U.cls[j]),
    show: className, tip: "the most over-represented class, the one selectivity refers to" }
    : null,
  { key: "contrib", label: "Contribution", get: (j) => U.contrib[j],
    show: D.contribution_given ? sig : pct, tip: "share of the reconstruction energy" },
].filter(Boolean);

// ---------- sprites ----------
function tileBox(h, w, box) {
  const m = Math.max(h, w);
  return m <= box ? Math.floor(box / m) : box / m;
}
function spriteHTML(t, n, grid, prefix, box, cls, label) {
  const img = D.image, s = tileBox(img.h, img.w, box);
  const sheet = Math.floor(t / grid.per), r = t % grid.per;
  const inSheet = Math.min(grid.per, n - sheet * grid.per);
  const rows = Math.ceil(inSheet / grid.cols);
  const w = img.w * s, h = img.h * s;
  const style = "width:" + w + "px;height:" + h + "px;background-size:" + grid.cols * w + "px " +
    rows * h + "px;background-position:" + -(r % grid.cols) * w + "px " +
    -Math.floor(r / grid.cols) * h + "px";
  // an image to assistive technology too: a background-image span is otherwise nothing
  return '<span class="sprite ' + prefix + sheet + " " + (cls || "") + '" role="img" ' +
    'aria-label="' + esc(label) + '" style="' + style + '"></span>';
}
const inputSprite = (t, box) => spriteHTML(t, D.samples.length, D.sheet, "sp", box, "",
  "sample #" + D.samples[t]);
const atomSprite = (j, box) => spriteHTML(j, M, D.atom_sheet, "sa", box, "atom",
  "decoder atom of unit " + j);

// ---------- series plots for non-image rows ----------
function bytes(b64) {
  const bin = atob(b64), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
const SERIES = D.plot ? { inputs: bytes(D.plot.inputs), atoms: bytes(D.plot.atoms) } : null;

function seriesSVG(arr, k, signed, w, h) {
  const P = D.plot.points, vals = arr.subarray(k * P, (k + 1) * P);
  // inputs span [lo, hi] of the data (zero where 0 falls in it); atoms are centred at 128
  let zero = signed ? 128 / 255 : (0 - D.plot.lo) / ((D.plot.hi - D.plot.lo) || 1);
  zero = Math.min(1, Math.max(0, zero));
  const y = (v) => (h - 2) - (v / 255) * (h - 4);
  const y0 = y(zero * 255), dx = w / Math.max(P, 1);
  let body = el("line", { class: "zero", x1: 0, x2: w, y1: f1(y0), y2: f1(y0) });
  if (P <= 48) {
    for (let i = 0; i < P; i++) {
      const yy = y(vals[i]);
      body += el("rect", { class: "bar", x: f1(i * dx + 0.5), width: f1(Math.max(dx - 1, 0.5)),
        y: f1(Math.min(yy, y0)), height: f1(Math.max(Math.abs(yy - y0), 0.5)) });
    }
  } else {
    const pts = [];
    for (let i = 0; i < P; i++) pts.push(f1(i * dx + dx / 2) + "," + f1(y(vals[i])));
    body += el("polyline", { class: "line", points: pts.join(" ") });
  }
  return svg(w, h, body, signed ? "decoder atom, as a series" : "sample, as a series");
}

// ---------- histograms ----------
function histSVG(counts, edges, opt) {
  const w = opt.w || 340, h = opt.h || 130, L = 34, B = 20, T = 8, R = 8;
  const n = counts.length, top = Math.max(1, ...counts);
  const bw = (w - L - R) / Math.max(n, 1), ph = h - B - T;
  const fx = opt.xfmt || sig;
  let s = "";
  for (let i = 0; i < n; i++) {
    const bh = (counts[i] / top) * ph;
    const tip = fx(edges[i]) + " \u2013 " + fx(edges[i + 1]) + ": " + counts[i];
    s += el("rect", { class: "bar", x: f1(L + i * bw + 0.5), y: f1(T + ph - bh),
      width: f1(Math.max(bw - 1, 0.5)), height: f1(bh) }, el("title", {}, esc(tip)));
  }
  s += el("line", { class: "axis", x1: L, x2: w - R, y1: T + ph, y2: T + ph });
  s += el("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, top);
  s += el("text", { x: L - 4, y: T + ph, "text-anchor": "end" }, 0);
  if (n) {
    s += el("text", { x: L, y: h - 5 }, esc(fx(edges[0])));
    s += el("text", { x: w - R, y: h - 5, "text-anchor": "end" }, esc(fx(edges[n])));
  }
  return svg(w, h, s, opt.label || "histogram");
}

function mixSVG(j) {
  const mix = D.mix[j], total = U.count[j], w = 340, row = 16, L = 70, R = 44;
  const other = total - mix.reduce((a, p) => a + p[1], 0);
  const rows = mix.map((p) => [D.classes[p[0]], p[1] / total, D.base[p[0]]]);
  if (other > 0) rows.push(["other", other / total, null]);
  const top = Math.max(...rows.map((r) => Math.max(r[1], r[2] || 0)), 1e-9);
  const h = rows.length * row + 4, bw = w - L - R;
  let s = "";
  rows.forEach((r, i) => {
    const y = 2 + i * row;
    // a long class name, right-aligned in a 70 px column, lost its start ("riptive-name");
    // shortened from the end instead, the whole name in its tooltip
    const name = String(r[0]), short = name.length > 10 ? name.slice(0, 9) + "\u2026" : name;
    s += el("text", { x: L - 6, y: y + 11, "text-anchor": "end" },
      el("title", {}, esc(name)) + esc(short));
    s += el("rect", { class: "bar", x: L, y: y + 2, width: f1((r[1] / top) * bw), height: row - 5 },
      el("title", {}, esc(r[0] + ": " + pct(r[1]))));
    if (r[2] !== null) {
      const bx = f1(L + (r[2] / top) * bw);
      s += el("line", { class: "base", x1: bx, x2: bx, y1: y, y2: y + row - 1 },
        el("title", {}, "base rate " + pct(r[2])));
    }
    s += el("text", { x: w - 4, y: y + 11, "text-anchor": "end" }, pct(r[1]));
  });
  return svg(w, h, s, "share of each class among the samples the unit fires on");
}

// ---------- overview ----------
function kpi(value, label) {
  return '<div class="kpi"><b>' + esc(value) + "</b><span>" + esc(label) + "</span></div>";
}
function renderOverview() {
  const O = D.overview;
  $("#kpis").innerHTML = kpi(D.N, "samples") + kpi(M, "units") +
    kpi(sig(O.mean_l0), "mean L0 (median " + O.median_l0 + ")") +
    kpi(O.dead + " (" + pct(O.dead / M) + ")", "dead units (never active)") +
    kpi(O.dense + " (" + pct(O.dense / M) + ")",
      "dense units (active on > " + pct(O.dense_cut) + ")") +
    kpi(D.threshold, "activity threshold |h| >") +
    (LABELLED ? kpi(D.classes.length, "classes") : kpi("no labels", "class columns omitted"));
  $("#ov-l0").innerHTML = "<figcaption>Active units per sample (L0)</figcaption>" +
    histSVG(O.l0.counts, O.l0.edges, { xfmt: (v) => String(Math.round(v)) });
  const alive = M - O.dead;
  $("#ov-freq").innerHTML = "<figcaption>Firing frequency of the " + alive +
    " units that fire (log scale)</figcaption>" + (alive
    ? histSVG(O.freq.counts, O.freq.edges, { xfmt: (v) => pct(Math.pow(10, v)) })
    : '<p class="deadnote">No unit is ever active on these samples.</p>');
}

// ---------- unit table ----------
const tbody = $("#units tbody");
let rows = [], order = [], sortKey = null, sortDir = 0, cur = null;

function tags(j) {
  return (U.count[j] === 0 ? '<span class="tag">dead</span>' : "") +
    (DENSE.has(j) ? '<span class="tag dense">dense</span>' : "");
}
function rowHTML(j) {
  const cells = COLS.map((c) => {
    if (c.atom) return '<td class="c-atom">' + atomSprite(j, 24) + "</td>";
    const text = esc(c.show(c.get(j))) + (c.key === "unit" ? tags(j) : "");
    return '<td class="c-' + c.key + '">' + text + "</td>";
  });
  return '<tr data-unit="' + j + '" tabindex="-1" aria-selected="false"' +
    (U.count[j] === 0 ? ' class="dead"' : "") + ">" +
    cells.join("") + "</tr>";
}
function renderTable() {
  $("#units thead tr").innerHTML = COLS.map((c) => c.atom
    ? el("th", { class: "c-atom" }, c.label)
    : el("th", { class: "c-" + c.key, "data-key": c.key, title: esc(c.tip || ""),
      "aria-sort": "none" }, el("button", { type: "button" }, c.label))).join("");
  const html = [];
  for (let j = 0; j < M; j++) html.push(rowHTML(j));
  tbody.innerHTML = html.join("");
  rows = Array.from(tbody.children);
  order = rows.map((_, j) => j);
}
function sortBy(key) {
  const col = COLS.find((c) => c.key === key);
  sortDir = sortKey === key ? -sortDir : (key === "unit" ? 1 : -1);  // first click: largest first
  sortKey = key;
  const dir = sortDir;
  order.sort((a, b) => {
    const va = col.get(a), vb = col.get(b);
    if (va === null || va === undefined) return (vb === null || vb === undefined) ? a - b : 1;
    if (vb === null || vb === undefined) return -1;  // missing values last in both directions
    return va === vb ? a - b : (va < vb ? -dir : dir);
  });
  const frag = document.createDocumentFragment();
  order.forEach((j) => frag.appendChild(rows[j]));
  tbody.appendChild(frag);
  document.querySelectorAll("#units th[data-key]").forEach((th) => th.setAttribute("aria-sort",
    th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none"));
}

// filter text: unit numbers and ranges ("3, 10-20", or "unit 3"), "class 3" (a class by its
// name, which on digit data is a number too), or a class name alone
function byClass(name) {
  name = name.trim().toLowerCase();
  const c = LABELLED ? D.classes.findIndex((n) => String(n).toLowerCase() === name) : -1;
  return c >= 0 ? (j) => U.cls[j] === c : () => false;
}
function parseQuery(q) {
  q = q.trim();
  if (!q) return null;
  const named = /^class\s*:?\s*(.+)$/i.exec(q);
  if (named) return byClass(named[1]);
  q = q.replace(/^units?\s*:?\s*/i, "");
  if (/^[\d\s,\-]+$/.test(q)) {
    // "10-20", "20-10" (either order), "30-" (to the last unit), "-5" (from the first)
    const sets = q.split(",").map((p) => p.trim()).filter(Boolean).map((p) => {
      const m = /^(\d*)\s*-\s*(\d*)$/.exec(p);
      if (!m || (m[1] === "" && m[2] === "")) return [+p, +p];
      const lo = m[1] === "" ? 0 : +m[1], hi = m[2] === "" ? Infinity : +m[2];
      return [Math.min(lo, hi), Math.max(lo, hi)];
    });
    return (j) => sets.some((r) => j >= r[0] && j <= r[1]);
  }
  return byClass(q);
}
function applyFilter() {
  const match = parseQuery($("#f-query").value);
  const minFreq = (parseFloat($("#f-freq").value) || 0) / 100;
  const hideDead = $("#f-dead").checked;
  let shown = 0;
  for (let j = 0; j < M; j++) {
    const ok = (!match || match(j)) && U.freq[j] >= minFreq && !(hideDead && U.count[j] === 0);
    rows[j].hidden = !ok;
    shown += ok ? 1 : 0;
  }
  $("#f-count").textContent = shown + " of " + M + " units";
}
const visible = () => order.filter((j) => !rows[j].hidden);

function select(j) {
  if (cur !== null) {
    rows[cur].classList.remove("selected");
    rows[cur].setAttribute("aria-selected", "false");
  }
  cur = j;
  if (j === null) return;
  rows[j].classList.add("selected");
  rows[j].setAttribute("aria-selected", "true");
  rows[j].scrollIntoView({ block: "nearest" });
}
function step(d) {
  const vis = visible();
  if (!vis.length) return null;
  const i = vis.indexOf(cur);
  const k = i < 0 ? (d > 0 ? 0 : vis.length - 1) : Math.min(vis.length - 1, Math.max(0, i + d));
  select(vis[k]);
  return vis[k];
}

// ---------- card ----------
const wrap = $("#card-wrap"), card = $("#card");

function stat(label, value) {
  return '<div class="stat"><span>' + esc(label) + "</span><b>" + esc(value) + "</b></div>";
}
function cardStats(j) {
  let s = stat("frequency", pct(U.freq[j])) + stat("active on", U.count[j] + " of " + D.N) +
    stat("mean act. (active)", sig(U.mean[j])) + stat("mean act. (all)", sig(U.mean_all[j])) +
    stat("max |h|", sig(U.max[j]));
  if (LABELLED) {
    s += stat("selectivity", sig(U.sel[j])) + stat("preferred class", className(U.cls[j]));
  }
  return s + stat("contribution", D.contribution_given ? sig(U.contrib[j]) : pct(U.contrib[j]));
}
function atomHTML(j) {
  if (D.image) return atomSprite(j, 168);
  const note = "binned to " + D.plot.points + " points (largest |value| per bin)";
  return seriesSVG(SERIES.atoms, j, true, 320, 120) +
    (D.plot.binned ? el("div", { class: "hint" }, note) : "");
}
function thumbHTML(j, i) {
  const t = D.top[j][i], n = D.samples[t];
  const vis = D.image ? inputSprite(t, 64) : seriesSVG(SERIES.inputs, t, false, 120, 56);
  const lab = LABELLED ? " \u00b7 " + esc(D.classes[D.sample_label[t]]) : "";
  return '<figure class="thumb" title="sample ' + n + '">' + vis + "<b>" + sig(D.act[j][i]) +
    "</b>" + lab + "<br>#" + n + "</figure>";
}
function cardBody(j) {
  if (U.count[j] === 0) {
    return '<p class="deadnote">Dead: never active (|h| &gt; ' + D.threshold + ") on these " +
      D.N + ' samples.</p><div class="panels"><figure><figcaption>Decoder atom (model\u2019s input space)</figcaption>' +
      atomHTML(j) + "</figure></div>";
  }
  const H = D.hist, edges = [];
  const nb = H.counts[j].length;
  for (let i = 0; i <= nb; i++) edges.push(H.lo[j] + (i / nb) * (H.hi[j] - H.lo[j]));
  let s = '<div class="panels"><figure><figcaption>Decoder atom (model\u2019s input space)</figcaption>' + atomHTML(j) +
    "</figure><figure><figcaption>Activation histogram (" + U.count[j] + " active samples)" +
    "</figcaption>" + histSVG(H.counts[j], edges, {}) + "</figure>";
  s += LABELLED
    ? "<figure><figcaption>Classes of the inputs that fire it (bars) vs base rate (lines)" +
      "</figcaption>" + mixSVG(j) + "</figure></div>"
    : '<figure><figcaption>Classes</figcaption><p class="hint">no labels</p></figure></div>';
  const k = D.top[j].length, thumbs = [];
  for (let i = 0; i < k; i++) thumbs.push(thumbHTML(j, i));
  return s + "<h3>Top " + k + " inputs of " + U.count[j] + " active (by |h|)</h3>" +
    '<div class="thumbs">' + thumbs.join("") + "</div>";
}
function setHash(h) {
  try {
    history.replaceState(null, "", location.href.split("#")[0] + h);
  } catch (e) { /* some file:// setups forbid it; the card still opens */ }
}
function openCard(j) {
  select(j);
  card.dataset.unit = j;
  const btn = (go, tip, text) => el("button", { type: "button", "data-go": go, title: tip }, text);
  const nav = btn(-1, "previous (\u2190)", "\u2190") + btn(1, "next (\u2192)", "\u2192") +
    btn("close", "close (Esc)", "\u00d7");
  card.innerHTML = '<header><h2 id="card-title">Unit <span class="unit-index">' + j +
    "</span></h2>" + tags(j) + "<nav>" + nav + "</nav></header>" +
    '<div class="stats">' + cardStats(j) + "</div>" + cardBody(j);
  wrap.hidden = false;
  card.focus({ preventScroll: true });
  if (location.hash !== "#unit-" + j) setHash("#unit-" + j);
}
function closeCard() {
  wrap.hidden = true;
  delete card.dataset.unit;
  if (location.hash) setHash("");
  if (cur !== null && rows[cur] && !rows[cur].hidden) rows[cur].focus({ preventScroll: true });
}
const cardOpen = () => !wrap.hidden;
// the card is a modal dialog: Tab cycles through its own controls instead of leaving for
// the table and the filter behind the overlay
function trapTab(e) {
  if (e.key !== "Tab" || !cardOpen()) return;
  const f = Array.from(card.querySelectorAll("button, a[href], [tabindex]:not([tabindex='-1'])"));
  if (!f.length) return;
  const first = f[0], last = f[f.length - 1], at = document.activeElement;
  if (e.shiftKey && (at === first || at === card)) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && at === last) {
    e.preventDefault();
    first.focus();
  }
}

// ---------- events ----------
function onKey(e) {
  const tag = (e.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select") {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  // Enter and Space on a button, a <summary> or a link do what those do (sort, open the
  // definitions, follow): Enter on the sort button opened unit 0's card instead
  if ((e.key === "Enter" || e.key === " ") && e.target.closest &&
      e.target.closest("button, summary, a")) return;
  const k = e.key;
  let d = 0;
  if (k === "ArrowDown" || k === "j") d = 1;
  else if (k === "ArrowUp" || k === "k") d = -1;
  else if (cardOpen() && k === "ArrowRight") d = 1;
  else if (cardOpen() && k === "ArrowLeft") d = -1;
  if (d) {
    e.preventDefault();
    const j = step(d);
    if (j !== null && cardOpen()) openCard(j);
    // the row takes the focus, so that Enter opens it even after a sort button was clicked
    else if (j !== null) rows[j].focus({ preventScroll: true });
  } else if (k === "Enter" && !cardOpen()) {
    e.preventDefault();
    const j = cur !== null && !rows[cur].hidden ? cur : step(1);
    if (j !== null) openCard(j);
  } else if (k === "Escape" && cardOpen()) {
    e.preventDefault();
    closeCard();
  }
}
function fromHash() {
  const m = /^#unit-(\d+)$/.exec(location.hash);
  if (m && +m[1] < M) openCard(+m[1]);
  else if (cardOpen()) closeCard();
}
function legend() {
  const items = [
    ["Active", "a code entry with |h| > " + D.threshold + "."],
    ["Frequency", "share of the " + D.N + " samples on which the unit is active."],
    ["Mean act.", "mean of h over the samples where the unit is active (\u2014 when dead); " +
      "the card also gives the mean over all samples."],
    ["Dead / dense", "never active on these samples / active on more than " +
      pct(D.overview.dense_cut) + " of them."],
    ["Contribution", D.contribution_given ? "given by the caller." : "the unit's share of " +
      "\u03a3_j mean_i h_ij\u00b2 \u2016a_j\u2016\u00b2 (reconstruction energy; overlaps " +
      "between atoms ignored)."],
    ["Top inputs", "the active samples with the largest |h|, at most " + D.top_n + " per unit; " +
      "#n is the sample's row in the data the page was made from."],
    ["Atom", "the unit's decoder atom, drawn in the space the model reconstructs (after its " +
      "preprocessing, e.g. psae's Normalizer, which z-scores each input dimension), not in the " +
      "thumbnails' units; each atom is scaled by its own largest |a|, with 0 white (grey for " +
      "colour atoms)."],
  ];
  if (LABELLED) items.push(["Selectivity", "max over classes c of (p(c | fires) \u2212 p(c)) / " +
    "(1 \u2212 p(c)), p(c) being the class's share of all samples: 0 when the unit fires on the " +
    "classes in their base proportions, 1 when it fires on one class only. The preferred " +
    "class is the c attaining that maximum (not always the most frequent class among the " +
    "inputs: a common class may be under-represented)."]);
  else items.push(["Labels", "no labels: class selectivity and class mix are not shown."]);
  $("#legend-body").innerHTML = items.map((i) => "<dt>" + esc(i[0]) + "</dt><dd>" + esc(i[1]) +
    "</dd>").join("");
}
function init() {
  renderOverview();
  renderTable();
  legend();
  applyFilter();
  $("#units thead").addEventListener("click", (e) => {
    const th = e.target.closest("th[data-key]");
    if (th) sortBy(th.dataset.key);
  });
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-unit]");
    if (tr) openCard(+tr.dataset.unit);
  });
  ["#f-query", "#f-freq", "#f-dead"].forEach((s) => $(s).addEventListener("input", applyFilter));
  wrap.addEventListener("click", (e) => {
    if (e.target === wrap) return closeCard();
    const b = e.target.closest("button[data-go]");
    if (!b) return;
    if (b.dataset.go === "close") return closeCard();
    const j = step(+b.dataset.go);
    if (j !== null) openCard(j);
  });
  document.addEventListener("keydown", onKey);
  card.addEventListener("keydown", trapTab);
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.body.dataset.ready = "1";
}
init();
})();
