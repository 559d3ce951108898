"""The registry of sparsity mechanisms: every model psae trains is one record here.

>>> from psae import sparsity
>>> sparsity.get("sql0").label
'PSAE'
>>> sparsity.names()
('none', 'l1', 'kl', 'sql0', 'l0', 'topk', 'batchtopk', 'jumprelu', 'sqjumprelu')

To add a model, write a module that builds a :class:`Mechanism` and register it (below, or at
run time with :func:`register`); the estimator, ``psae fit --penalty``, ``psae reproduce`` and
the docs pick it up.
"""

from __future__ import annotations

from ..errors import ParameterError
from . import batchtopk, jumprelu, kl, l1, plain, smoothed_l0, sqjumprelu, topk
from .mechanism import Mechanism, Settings

__all__ = ["Mechanism", "Settings", "get", "names", "register", "unregister", "by_key", "keys",
           "defaults_of", "markdown_table"]

_REGISTRY: dict[str, Mechanism] = {}


def register(mechanism: Mechanism, *, replace: bool = False) -> Mechanism:
    """Add ``mechanism``; its ``name`` and ``key`` must be new unless ``replace``."""
    if not replace:
        if mechanism.name in _REGISTRY:
            raise ValueError(f"a sparsity mechanism named {mechanism.name!r} is registered")
        if any(m.key == mechanism.key for m in _REGISTRY.values()):
            raise ValueError(f"a sparsity mechanism with key {mechanism.key!r} is registered")
    _REGISTRY[mechanism.name] = mechanism
    return mechanism


def unregister(name: str) -> None:
    """Remove the mechanism called ``name`` (tests and plug-ins)."""
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Registered mechanism names, in registration order."""
    return tuple(_REGISTRY)


def keys() -> tuple[str, ...]:
    """Registered ``psae reproduce`` model names, in registration order."""
    return tuple(m.key for m in _REGISTRY.values())


def get(name: str) -> Mechanism:
    """The mechanism called ``name``, or whose model name it is (``"psae"`` is sql0, ``"rae"``
    none: one model, two spellings, each accepted everywhere); an error lists the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        for m in _REGISTRY.values():
            if m.key and m.key == name:
                return m
        raise ParameterError(f"unknown penalty {name!r}; choose one of {names()} (or their "
                             f"model names {', '.join(keys())})") from None


def defaults_of(param: str) -> str:
    """What a None ``param`` means, per mechanism: ``"l1 0.003, kl 0.01"`` ("" if none)."""
    return ", ".join(f"{m.name} {m.defaults[param]}" for m in _REGISTRY.values()
                     if param in m.defaults)


def by_key(key: str) -> Mechanism:
    """The mechanism whose reproduce model name is ``key`` (``"psae"`` → sql0); its penalty
    name is accepted too (``"sql0"``)."""
    for m in _REGISTRY.values():
        if m.key == key:
            return m
    if key in _REGISTRY and _REGISTRY[key].key:
        return _REGISTRY[key]
    raise ParameterError(f"unknown model {key!r}; choose from {', '.join(keys())} (or their "
                         f"penalty names {', '.join(names())})")


def _fmt(v) -> str:
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _grid_text(grid) -> str:
    """A grid as ``β ∈ {…} × ρ ∈ {…}`` when it is a product, else its points."""
    keys = list(dict.fromkeys(k for p in grid for k in p))
    if not keys:
        return "(no knobs)"
    values = {k: list(dict.fromkeys(_fmt(p.get(k)) for p in grid)) for k in keys}
    product = 1
    for v in values.values():
        product *= len(v)
    if product == len(grid):
        return " × ".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in values.items())
    return "; ".join(", ".join(f"{k}={_fmt(v)}" for k, v in p.items()) for p in grid)


def markdown_table() -> str:
    """The registered mechanisms as a Markdown table (docs/protocol.md embeds it)."""
    rows = ["| model | penalty | label | cost | knobs (defaults) | reproduce grid |",
            "| --- | --- | --- | --- | --- | --- |"]
    for m in _REGISTRY.values():
        knobs = ", ".join(f"{p} ({_fmt(m.defaults[p])})" if p in m.defaults else p
                          for p in m.params) or "—"
        rows.append(f"| `{m.key}` | `{m.name}` | {m.label} | {m.formula} | {knobs} | "
                    f"{_grid_text(m.grid)} |")
    return "\n".join(rows)


for _m in (plain.NONE, l1.L1, kl.KL, smoothed_l0.SQL0, smoothed_l0.L0, topk.TOPK,
           batchtopk.BATCHTOPK, jumprelu.JUMPRELU, sqjumprelu.SQJUMPRELU):
    register(_m)
del _m
