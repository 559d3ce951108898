"""The errors psae raises about a user's data, parameters, files and fits.

Every one derives from :class:`PsaeError`, so the command line reports them in one line of
psae's own words and exits 2 (a :class:`ParameterError`) or 1 (the rest), while anything else
(a bug) keeps its traceback. Each also derives from the built-in exception scikit-learn and
Python users expect (``ValueError`` for bad values, ``FileNotFoundError`` for missing files), so
``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "PsaeError",
    "ParameterError",
    "InputError",
    "ModelFormatError",
    "FitFailedError",
    "TrainingDivergedError",
    "TrainingCollapsedError",
    "OwnershipError",
    "DiskFullError",
    "NotFoundError",
]


class PsaeError(Exception):
    """Base of every error psae raises about a user's input, data, parameters or files."""


class ParameterError(PsaeError, ValueError):
    """A parameter or command-line option has a value psae cannot use."""


class InputError(PsaeError, ValueError):
    """Data handed to a model or a measure is unusable: shape, dtype, NaN or infinity."""


class ModelFormatError(PsaeError, ValueError):
    """A model directory is missing, damaged, altered, from an incompatible version, or (on
    save) a directory psae may not write into."""


class FitFailedError(PsaeError, ArithmeticError):
    """Training ran but did not produce a usable model. ``history`` holds the epochs that
    finished; the estimator keeps the last parameters whose loss was finite."""

    history: list[dict] = []


class TrainingDivergedError(FitFailedError, FloatingPointError):
    """The loss became NaN or infinite."""


class TrainingCollapsedError(FitFailedError):
    """Every training input gets the same code (all zero, or every unit saturated): the codes
    carry no information about the input."""


class OwnershipError(PsaeError, ValueError):
    """An output psae may not write: it holds or is a file psae did not write, it is one of
    the command's own inputs, or it cannot be written at all."""


class NotFoundError(PsaeError, FileNotFoundError):
    """A file or folder psae was asked to read is not there."""


class DiskFullError(PsaeError, OSError):
    """A write ran out of space; nothing was replaced. The message names the path and the
    space free (and needed, where known)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()
