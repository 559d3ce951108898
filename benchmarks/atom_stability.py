"""Seed stability of a matched run's atoms, with and without the correction for atoms that
resemble each other.

For every model and target of a matched run whose seeds' atoms are on disk (``atoms/`` of the
run folder, written by each cell and kept out of git): over every pair of seeds, the mean
cosine of the Hungarian-matched atoms (``psae.metrics.atom_stability``, what the run's cells
record) and the share of matched pairs that are one feature found twice: cosine at least 0.5
and above both atoms' nearest other atom in their own dictionary
(``psae.metrics.distinct_atom_share``); and per seed, how alike a
model's own atoms are (mean cosine between two atoms, each atom's nearest other). It reads the
cells' atoms, not their scores, so it fills in the corrected measure for runs fitted before the
cells recorded it.

Prints one JSON object on stdout. ``--smoke`` fits two tiny seeds on the bundled digits.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
from code_spread import atoms as own_likeness  # the script's folder is on sys.path

from psae import metrics
from psae.reproduce.cells import load_atoms, save_atoms

NAME = re.compile(r"(?P<group>.+)__seed(?P<seed>\d+)\.npz$")


def groups(folder: Path) -> dict[str, dict[int, np.ndarray]]:
    out: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for path in sorted(folder.glob("*.npz")):
        m = NAME.match(path.name)
        atoms = load_atoms(path) if m else None
        if atoms is not None:
            out[m["group"]][int(m["seed"])] = atoms
    return out


def _mean(v: list) -> float | None:
    return float(np.mean(v)) if v else None


def measure(seeds: dict[int, np.ndarray]) -> dict:
    pairs = list(combinations(sorted(seeds), 2))
    stab = [metrics.atom_stability(seeds[a], seeds[b]) for a, b in pairs]
    distinct = [metrics.distinct_atom_share(seeds[a], seeds[b]) for a, b in pairs]
    own = [own_likeness(seeds[s]) for s in sorted(seeds)]
    return {"seeds": sorted(seeds), "pairs": len(pairs),
            "stability": _mean(stab), "stability_distinct": _mean(distinct),
            "own_mean_cosine": _mean([o["mean_cosine"] for o in own]),
            "own_nearest_other": _mean([o["mean_nearest_other"] for o in own])}


def smoke_atoms(folder: Path) -> None:
    from psae import SparseAutoencoder, datasets

    X = datasets.load("digits").X_train[:400]
    for seed in (0, 1):
        est = SparseAutoencoder(n_components=16, epochs=4, random_state=seed,
                                device="cpu").fit(X)
        save_atoms(folder / f"digits__psae__matched5__seed{seed}.npz", est)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=Path("results/matched/v2"),
                    help="a matched run's folder (its atoms/ is read)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if args.smoke else args.run / "atoms"
        if args.smoke:
            smoke_atoms(folder)
        found = groups(folder)
        out = {"run": "smoke" if args.smoke else str(args.run), "cpus": os.cpu_count(),
               "loadavg_1min": os.getloadavg()[0],
               "groups": {g: measure(s) for g, s in sorted(found.items()) if len(s) >= 2}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
