"""The explorer page's CSS (a Python string, so packaging needs no data files)."""

STYLE = r"""
:root {
  --fg: #1c2230; --muted: #667085; --line: #e3e6ec; --bg: #fff; --panel: #f7f8fa;
  --accent: #2f6fde; --sel: #e6eefc; --dead: #a0a6b1; --bar: #5b7fc7; --warn: #b54708;
}
* { box-sizing: border-box; }
body {
  margin: 0; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    sans-serif;
}
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 60px; }
h1 { font-size: 22px; margin: 0 0 6px; font-weight: 650; }
h2 { font-size: 17px; margin: 28px 0 10px; font-weight: 620; }
h3 { font-size: 14px; margin: 14px 0 8px; font-weight: 620; }
.sub { color: var(--muted); }
table, .num, .stat b, dd, .kpi, svg text { font-variant-numeric: tabular-nums; }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 8px 0 0; color: var(--muted); }
dl.meta div { display: flex; gap: 6px; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; color: var(--fg); }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 14px; }
.kpi {
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 14px; min-width: 96px;
}
.kpi b { display: block; font-size: 20px; font-weight: 620; }
.kpi span { color: var(--muted); font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; }
figcaption { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
svg text { font-size: 10px; fill: var(--muted); }
svg .bar { fill: var(--bar); }
svg .bar:hover { fill: var(--accent); }
svg .axis { stroke: #98a2b3; stroke-width: 1; }
svg .base { stroke: var(--warn); stroke-width: 2; }
svg .zero { stroke: #c0c6d0; stroke-width: 1; stroke-dasharray: 2 2; }
svg .line { fill: none; stroke: var(--bar); stroke-width: 1.2; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; margin: 8px 0; }
.controls input[type=search], .controls input[type=number] {
  font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px;
}
.controls input[type=search] { width: 220px; }
.controls input[type=number] { width: 80px; }
.controls .count { color: var(--muted); margin-left: auto; }
.tablewrap { max-height: 70vh; overflow: auto; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 4px 10px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.c-atom, th.c-atom, td.c-cls, th.c-cls { text-align: center; }
thead th {
  position: sticky; top: 0; background: var(--panel); border-bottom: 1px solid var(--line);
  z-index: 1; font-weight: 600;
}
th button {
  font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0;
  cursor: pointer;
}
th[aria-sort=descending] button::after { content: " \25BC"; font-size: 9px; }
th[aria-sort=ascending] button::after { content: " \25B2"; font-size: 9px; }
tbody tr { cursor: pointer; border-bottom: 1px solid #f0f2f5; }
tbody tr:hover { background: #f5f7fb; }
tbody tr.selected { background: var(--sel); outline: 1px solid var(--accent); }
tbody tr.dead td { color: var(--dead); }
.tag {
  display: inline-block; font-size: 10px; padding: 0 5px; border-radius: 4px; margin-left: 6px;
  background: #eef1f6; color: var(--muted); vertical-align: 1px;
}
.tag.dense { background: #fdf0e6; color: var(--warn); }
.sprite { display: inline-block; image-rendering: pixelated; background-repeat: no-repeat;
  vertical-align: middle; border-radius: 2px; }
.overlay {
  position: fixed; inset: 0; background: rgba(20, 24, 33, .45); display: flex;
  align-items: flex-start; justify-content: center; padding: 4vh 12px; overflow: auto; z-index: 5;
}
.overlay[hidden] { display: none; }
#card {
  background: var(--bg); border-radius: 10px; width: min(980px, 100%); padding: 18px 22px 24px;
  box-shadow: 0 12px 40px rgba(0, 0, 0, .25); outline: none;
}
#card header { display: flex; align-items: center; gap: 10px; }
#card header h2 { margin: 0; }
#card header nav { margin-left: auto; display: flex; gap: 6px; }
#card header button {
  font: inherit; border: 1px solid var(--line); background: var(--panel); border-radius: 6px;
  padding: 3px 10px; cursor: pointer;
}
.stats { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 12px 0; }
.stat span { color: var(--muted); font-size: 12px; display: block; }
.stat b { font-weight: 600; }
.deadnote { background: #f2f4f7; border-radius: 6px; padding: 8px 12px; color: var(--muted); }
.panels { display: flex; flex-wrap: wrap; gap: 22px; align-items: flex-start; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; }
.thumb { text-align: center; font-size: 11px; color: var(--muted); }
.thumb .sprite, .thumb svg { display: block; margin: 0 auto 2px; border: 1px solid var(--line); }
.thumb b { color: var(--fg); font-weight: 600; }
details.legend { margin-top: 28px; color: var(--muted); }
details.legend summary { cursor: pointer; color: var(--fg); font-weight: 600; }
details.legend dt { font-weight: 600; color: var(--fg); margin-top: 6px; }
details.legend dd { margin-left: 0; }
kbd {
  font: 11px ui-monospace, monospace; border: 1px solid var(--line); border-bottom-width: 2px;
  border-radius: 4px; padding: 0 4px; background: var(--panel);
}
.hint { color: var(--muted); font-size: 12px; }
"""
