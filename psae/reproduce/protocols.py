"""The comparison protocols a run can hold, each one folder (``paper/``, ``matched/``): its
settings, the cells it fits (``cells.py``), claims, figures, tables and its part of the
report, with its record (``record.py``, a :class:`~.protocol.Protocol`) registered here. The
runner plans and fits the cells of the protocols a run names (``--protocol``), and asks every
registered protocol for its claims and figures; the report renders each one's section, in
``order``. A new protocol is a folder and one :func:`register`.
"""

from __future__ import annotations

from .protocol import CellRules, Protocol

__all__ = ["Protocol", "CellRules", "register", "unregister", "registered", "fitting_protocols",
           "protocol_of_kind", "BOTH", "BUILT_IN"]


_REGISTRY: dict[str, Protocol] = {}
BUILT_IN = ("matched", "paper")
# what --protocol both names (kept from before protocols were registered)
BOTH = ("paper", "matched")
_loaded = False


def _built_in() -> None:
    """Register the built-in protocols, once (on first use, so that importing the registry
    stays light)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from .matched.record import PROTOCOL as matched
    from .paper.record import PROTOCOL as paper

    for p in (matched, paper):
        _REGISTRY[p.name] = p


def register(protocol: Protocol) -> Protocol:
    """Add ``protocol`` (a name already taken is an error: unregister it first)."""
    _built_in()
    if protocol.name in _REGISTRY:
        raise ValueError(f"a protocol named {protocol.name!r} is registered already")
    if any(p.claims_key == protocol.claims_key for p in _REGISTRY.values()):
        raise ValueError(f"another protocol stores its claims under {protocol.claims_key!r}")
    if protocol.name == "both":
        raise ValueError("'both' names the paper and matched protocols together")
    if protocol.cells is not None:
        taken = {k for p in fitting_protocols() for k in p.cells.kinds}
        if clash := sorted(taken & set(protocol.cells.kinds)):
            raise ValueError(f"another protocol fits cells of kind {', '.join(clash)}")
    _REGISTRY[protocol.name] = protocol
    return protocol


def unregister(name: str) -> None:
    """Remove a protocol added with :func:`register` (the built-in ones stay)."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is built in and cannot be removed")
    _REGISTRY.pop(name, None)


def registered() -> list[Protocol]:
    """Every protocol, in report order."""
    _built_in()
    return sorted(_REGISTRY.values(), key=lambda p: (p.order, p.name))


def fitting_protocols() -> list[Protocol]:
    """The protocols that fit cells of their own (``--protocol`` names one of them)."""
    return [p for p in registered() if p.cells is not None]


def protocol_of_kind(kind: str) -> Protocol:
    """The protocol whose cells have ``kind``."""
    for p in fitting_protocols():
        if kind in p.cells.kinds:
            return p
    raise KeyError(f"no registered protocol fits cells of kind {kind!r}")
