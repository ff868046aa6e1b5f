"""Errors a user can act on.

Every failure caused by the user's input or arguments is raised as an :class:`RdistillError`; the CLI prints it
as one line (``rdistill: error: ...``) and exits with status 2, and only ``--verbose`` shows a traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


class RdistillError(Exception):
    """A problem the user can fix: bad input, a bad argument, a missing file."""

    exit_code = 2


class InputError(RdistillError):
    """Malformed input, located by file and line so the user can open it there."""

    def __init__(self, source: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.source = str(source)
        self.line = line
        self.detail = message
        where = self.source if line is None else f"{self.source}:{line}"
        super().__init__(f"{where}: {message}")


class UsageError(RdistillError):
    """Arguments that cannot work together, or that name something that does not exist."""


class Interrupted(RdistillError):
    """Ctrl-C in a long job, said in one line (what was kept, how to go on), with the shell's status for SIGINT."""

    exit_code = 130


def note(message: str) -> None:
    """One ``rdistill: note: ...`` line on stderr: input accepted by a documented rule the user should know was
    applied (a duplicate that counts once, an option that could not be honoured in full)."""
    import sys

    print(f"rdistill: note: {message}", file=sys.stderr)
