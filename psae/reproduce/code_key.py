"""Which training code made a run's cells: a key that changes when the code does.

A resumed run keeps its finished cells, so they must have been made by the code that would make
the rest; psae's version alone changes too rarely for that. The key hashes the code of the
modules that decide a cell's numbers (the estimator, its training loop and sparsity
mechanisms, the metrics and classifier, the protocols and the cell runner), parsed so that
comments and docstrings do not count: editing words never invalidates a long run.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

__all__ = ["training_code_key"]

_ROOT = Path(__file__).resolve().parent.parent
_NOT_TRAINING = ("__main__", "measures", "persistence", "bundle", "model_files", "errors",
                 "_version")
_PARTS = ("sparsity", "training", "reproduce/cells.py", "reproduce/cell_runner.py",
          "reproduce/matched/settings.py", "reproduce/matched/cells.py",
          "reproduce/paper/settings.py", "reproduce/paper/cells.py", "reproduce/labels.py",
          "reproduce/data.py", "reproduce/runner.py")


def _files() -> list[Path]:
    out = [p for p in _ROOT.glob("*.py") if p.stem not in _NOT_TRAINING]
    for part in _PARTS:
        path = _ROOT / part
        out += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return sorted(out)


def _code_only(source: str) -> str:
    """The module's syntax tree without docstrings (comments never reach it)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


@lru_cache(maxsize=8)
def training_code_key(*others: str) -> str:
    """16 hex digits of SHA-256 over the training modules' code, and that of the files
    ``others`` (a registered protocol's own, outside psae)."""
    h = hashlib.sha256()
    for path in _files():
        h.update(path.relative_to(_ROOT).as_posix().encode())
        h.update(_code_only(path.read_text(encoding="utf-8")).encode())
    for other in others:
        h.update(Path(other).name.encode())
        h.update(_code_only(Path(other).read_text(encoding="utf-8")).encode())
    return h.hexdigest()[:16]
