"""The package's shape: no import cycles, and the parallel context passed once."""

import ast
from pathlib import Path

import numpy as np
import torch

from psae.distributed import SINGLE, Comm
from psae.training.network import Autoencoder
from psae.training.objective import Objective
from psae.training.trainer import Trainer

PKG = Path(__file__).resolve().parents[1] / "psae"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """psae modules ``path`` imports anywhere (module level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("psae")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("psae"):
                continue
            for a in node.names:  # ``from . import x`` imports the submodule x
                out.add(f"{mod}.{a.name}" if (PKG.parent / f"{mod}.{a.name}".replace(".", "/")
                                               ).with_suffix(".py").exists()
                        or (PKG.parent / f"{mod}.{a.name}".replace(".", "/")).is_dir()
                        else mod)
    return out


def test_no_import_cycles():
    graph = {_module_name(p): _imports(p) for p in PKG.rglob("*.py")}
    # a package's __init__ importing its own submodules is how packages are built, and a
    # submodule reaching its parent package means reaching those submodules: follow both
    # edges but never count parent -> child as closing a loop through the parent itself
    def deps(m):
        return {d for d in graph.get(m, ()) if d != m and not m.startswith(d + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in deps(m):
            if d not in graph:
                continue
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_single_process_comm_is_the_identity():
    assert Comm.current() == SINGLE and SINGLE.is_main and SINGLE.world == 1
    t = torch.arange(3.0)
    assert SINGLE.all_mean(t) is t
    m = Autoencoder(4, 3)
    assert SINGLE.wrap(m) is m


def test_trainer_step_is_one_optimiser_step_on_the_pure_objective():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 10, generator=g) * 0.8 + 0.1
    m = Autoencoder(10, 6, generator=torch.Generator().manual_seed(1))
    trainer = Trainer(m, Objective.of("sql0", lam=10.0), lr=1e-2, weight_decay=1e-3)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    terms = trainer.step(x, 0.5)
    fwd = Autoencoder(10, 6, generator=torch.Generator().manual_seed(1))(x)
    total, recon, sparse = Objective.of("sql0", lam=10.0)(x, fwd.h, fwd.y, 0.5)
    wd = 0.5e-3 * sum(before[k].square().sum() for k in ("W1", "atoms"))
    torch.testing.assert_close(terms, torch.stack([total + wd, recon, sparse]).detach())
    assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    losses = [float(trainer.step(x, 0.5)[0]) for _ in range(30)]
    assert losses[-1] < losses[0]
    assert np.isfinite(losses).all()
