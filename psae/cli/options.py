"""``psae fit``'s model options, generated from :class:`~psae.SparseAutoencoder`'s signature and
docstring: the estimator declares each option once, with its type, default and help.

Option names are the parameter names with dashes (``n_components`` → ``--n-components``), but
for a few shorter spellings kept from earlier releases (:data:`FLAGS`). Options the user did not
give are not passed on, so the estimator's own defaults apply.
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Callable

from .. import sparsity
from ..errors import ParameterError
from ..estimator import SparseAutoencoder

__all__ = ["add_model_options", "model_params", "given_params", "check_given",
           "docstring_params", "FLAGS"]

FLAGS = {"learning_rate": ("--lr", "--learning-rate"), "random_state": ("--seed",)}
"""Parameters whose option is not the plain ``--name``."""
CLI_DEFAULTS = {"random_state": 0}
"""Where the CLI's default differs from the estimator's: a command line run repeats itself."""
SKIP = ("verbose", "threads")
"""Parameters the CLI sets from other options (``--quiet``, the global ``--threads``)."""


def docstring_params(doc: str) -> dict[str, tuple[str, str]]:
    """``name -> (type line, description)`` from a numpydoc ``Parameters`` section."""
    section = re.search(r"Parameters\n\s*-+\n(.*?)(?:\n\s*\n\s*[A-Z]\w+\n\s*-+\n|\Z)", doc, re.S)
    out: dict[str, tuple[str, str]] = {}
    if not section:
        return out
    lines = section.group(1).splitlines()
    indent = min(len(ln) - len(ln.lstrip()) for ln in lines if ln.strip())
    names: list[str] = []
    for ln in lines:
        if not ln.strip():
            continue
        if len(ln) - len(ln.lstrip()) == indent and " : " in ln:
            head, type_line = ln.strip().split(" : ", 1)
            names = [n.strip() for n in head.split(",")]
            for n in names:
                out[n] = (type_line, "")
        else:
            for n in names:
                out[n] = (out[n][0], (out[n][1] + " " + ln.strip()).strip())
    return out


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def _ints(text: str) -> int | tuple[int, ...]:
    try:
        parts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"expected an int or comma-separated ints, got {text!r}") from e
    return parts[0] if len(parts) == 1 else tuple(parts)


def _int_or_word(text: str) -> int | str:
    return int(text) if text.strip().lstrip("-").isdigit() else text


CONVERTERS: dict[str, Callable[[str], object]] = {
    "int": int, "int | None": int, "float": float, "float | None": float, "str": str,
    "str | None": str, "Sequence[float]": _floats, "int | Sequence[int]": _ints,
    "int | str": _int_or_word,
}
"""Annotation (as written in the signature) → how the option's text becomes the value."""


def _help(name: str, type_line: str, description: str, default) -> str:
    text = re.sub(r"``|:\w+:`~?([^`]+)`", r"\1", description).replace("%", "%%")
    if name == "penalty":
        text += " " + "; ".join(f"{m}: {sparsity.get(m).summary}" for m in sparsity.names())
        text += " (the model names of psae reproduce spell them too: " + ", ".join(
            f"{m.key} = {m.name}" for m in map(sparsity.get, sparsity.names())
            if m.key and m.key != m.name) + ")"
    shown = CLI_DEFAULTS.get(name, default)
    if isinstance(shown, tuple):
        shown = ",".join(str(v) for v in shown)
    if shown is None and sparsity.defaults_of(name):
        shown = "per penalty, " + sparsity.defaults_of(name)
    return f"{text} (default: {shown})"


def _penalty_name(text: str) -> str:
    """A model's reproduce name spells its penalty too (``psae`` is sql0, ``rae`` none); any
    other text is left for argparse's choices to refuse."""
    return next((m for m in sparsity.names() if sparsity.get(m).key == text), text)


def _choices(name: str, type_line: str) -> list[str] | None:
    if name == "penalty":
        return list(sparsity.names())
    m = re.match(r"\{(.*?)\}", type_line)
    return [c.strip().strip("\"'") for c in m.group(1).split(",")] if m else None


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """One option per estimator parameter, in signature order, in a "model" group."""
    docs = docstring_params(SparseAutoencoder.__doc__ or "")
    group = parser.add_argument_group("model", "options of psae.SparseAutoencoder")
    for name, p in inspect.signature(SparseAutoencoder).parameters.items():
        if name in SKIP:
            continue
        type_line, description = docs.get(name, ("", ""))
        flags = FLAGS.get(name, ("--" + name.replace("_", "-"),))
        if str(p.annotation) == "bool":  # a switch: present means True
            group.add_argument(*flags, dest=name, action="store_true", default=argparse.SUPPRESS,
                               help=_help(name, type_line, description, p.default))
            continue
        convert = CONVERTERS.get(str(p.annotation), int if name == "random_state" else str)
        if name == "penalty":
            convert = _penalty_name
        choices = _choices(name, type_line)
        group.add_argument(*flags, dest=name, type=convert, default=argparse.SUPPRESS,
                           choices=choices, metavar=None if choices else name.upper(),
                           help=_help(name, type_line, description, p.default))


def given_params(args: argparse.Namespace) -> set[str]:
    """The estimator parameters the user gave on the command line."""
    names = inspect.signature(SparseAutoencoder).parameters
    return {n for n in names if n not in SKIP and hasattr(args, n)}


def _option(name: str) -> str:
    return FLAGS.get(name, ("--" + name.replace("_", "-"),))[0]


def check_given(params: dict) -> None:
    """An option the chosen penalty does not read is an error even at its default value: on a
    command line it was asked for (the estimator alone can only tell a changed value)."""
    penalty = params.get("penalty", inspect.signature(SparseAutoencoder).parameters[
        "penalty"].default)
    try:
        used = sparsity.get(penalty).params
    except ParameterError:
        return  # the estimator says which penalties there are
    specific = dict.fromkeys(p for m in sparsity.names() for p in sparsity.get(m).params)
    for name in specific:
        if name in params and name not in used:
            users = ", ".join(m for m in sparsity.names() if name in sparsity.get(m).params)
            raise ParameterError(f"{_option(name)} has no effect with --penalty {penalty}; it "
                                 f"applies to: {users}. Leave it out, or choose one of those "
                                 "penalties")


_NEEDS = {"validation_fraction": ("early_stopping", True, "--early-stopping"),
          "tol": ("early_stopping", True, "--early-stopping"),
          "n_iter_no_change": ("early_stopping", True, "--early-stopping"),
          "batch_size": ("solver", "adam", "--solver adam (L-BFGS steps on the whole set)")}
"""Options that only a setting reads: given without it, they changed nothing, silently
(``--max-epochs`` and ``--raw-codes`` were already refused so by the estimator)."""


def check_settings(params: dict) -> None:
    """An option given without the setting that reads it is a :class:`ParameterError`."""
    defaults = inspect.signature(SparseAutoencoder).parameters
    for name, (needs, value, words) in _NEEDS.items():
        have = params.get(needs, CLI_DEFAULTS.get(needs, defaults[needs].default))
        if name in params and have != value:
            raise ParameterError(f"{_option(name)} has no effect without {words}; leave it "
                                 "out, or add that")


def model_params(args: argparse.Namespace) -> dict:
    """Keyword arguments for ``SparseAutoencoder``: what was given, plus the CLI's defaults.
    An option the chosen penalty ignores is a :class:`~psae.errors.ParameterError`."""
    params = {n: getattr(args, n) for n in given_params(args)}
    check_given(params)
    check_settings(params)
    for n, v in CLI_DEFAULTS.items():
        params.setdefault(n, v)
    return params
