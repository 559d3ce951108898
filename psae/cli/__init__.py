"""The ``psae`` command line: one module per command group, the shared data and model options.

``commands`` builds the parser and runs fit, encode, evaluate, datasets and models;
``reproduce`` and ``explore`` add their commands; ``data`` reads a command's data options,
``options`` turns the estimator's parameters into options.
"""

from .commands import build_parser, main

__all__ = ["build_parser", "main"]
