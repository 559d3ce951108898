"""The comparison protocols a run can hold, each one folder (``paper/``, ``matched/``): its
settings, claims, figures, tables and its part of the report, with its record
(``record.py``, a :class:`~.protocol.Protocol`) registered here. The runner asks every
registered protocol for its claims and figures; the report renders each one's section, in
``order``. A new protocol is a folder and one :func:`register`.
"""

from __future__ import annotations

from .protocol import Protocol

__all__ = ["Protocol", "register", "unregister", "registered"]


_REGISTRY: dict[str, Protocol] = {}
_BUILT_IN = ("matched", "paper")
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
    _REGISTRY[protocol.name] = protocol
    return protocol


def unregister(name: str) -> None:
    """Remove a protocol added with :func:`register` (the built-in ones stay)."""
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is built in and cannot be removed")
    _REGISTRY.pop(name, None)


def registered() -> list[Protocol]:
    """Every protocol, in report order."""
    _built_in()
    return sorted(_REGISTRY.values(), key=lambda p: (p.order, p.name))
