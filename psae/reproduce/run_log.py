"""The run's ``log.txt``: what every process of a run (the runner and its ``--jobs`` workers)
logs into, under the ``psae.reproduce`` logger."""

from __future__ import annotations

import errno
import logging
import os
import sys

__all__ = ["log", "attach_log"]

log = logging.getLogger("psae.reproduce")


class _LogFile(logging.FileHandler):
    """The run's log.txt; a write that fails (a full disk) stops the run with a psae error
    instead of logging's own traceback on stderr."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        from ..io.ownership import disk_full

        e = sys.exc_info()[1]
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(self.baseFilename, e) from e
        raise e if e is not None else RuntimeError("log write failed")


def attach_log(path: str | os.PathLike[str]) -> logging.Handler:
    """Append this process's run records to ``path``; returns the handler (remove and close
    it when the run ends)."""
    handler = _LogFile(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler
