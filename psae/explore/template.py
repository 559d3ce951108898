"""The explorer page's HTML skeleton; ``{{NAME}}`` slots are filled by :mod:`.page` (plain
replacement, so the CSS and script need no brace escaping)."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="psae {{VERSION}}">
<title>{{TITLE}}</title>
<style>{{STYLE}}</style>
<style>{{SPRITES}}</style>
</head>
<body>
<main>
<header>
<h1>{{TITLE}}</h1>
<div class="sub">What each unit of the sparse code learned, and which inputs fire it.</div>
{{META}}
</header>
<section id="overview">
<h2>Overview</h2>
<div class="kpis" id="kpis"></div>
<div class="charts"><figure id="ov-l0"></figure><figure id="ov-freq"></figure></div>
</section>
<section id="units">
<h2>Units</h2>
<div class="controls">
<label>Filter <input id="f-query" type="search" placeholder="units (3, 10-20) or class 3"
  autocomplete="off"></label>
<label>min. frequency <input id="f-freq" type="number" min="0" max="100" step="any"
  placeholder="0"> %</label>
<label><input id="f-dead" type="checkbox"> hide dead</label>
<span class="count" id="f-count"></span>
</div>
<div class="hint">Click a column to sort, a row to open its unit. Keys: <kbd>&uarr;</kbd>
<kbd>&darr;</kbd> or <kbd>j</kbd> <kbd>k</kbd> move, <kbd>Enter</kbd> opens,
<kbd>&larr;</kbd> <kbd>&rarr;</kbd> previous / next unit, <kbd>Esc</kbd> closes.
Link to a unit with <code>#unit-17</code>.</div>
<div class="tablewrap"><table><thead><tr></tr></thead><tbody></tbody></table></div>
</section>
<details class="legend"><summary>Definitions</summary><dl id="legend-body"></dl></details>
</main>
<div class="overlay" id="card-wrap" hidden>
<div id="card" role="dialog" aria-modal="true" aria-labelledby="card-title" tabindex="-1"></div>
</div>
<script type="application/json" id="psae-data">{{DATA}}</script>
<script>{{SCRIPT}}</script>
</body>
</html>
"""
