"""Errors a user can act on.

Every failure caused by the user's input or arguments is raised as an :class:`RdistillError`; the CLI prints it
as one line (``rdistill: error: ...``) and exits with status 2, and only ``--verbose`` shows a traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os

# The one errno -> message table: file-system faults a user fixes (a full disk, a read-only folder, a folder where
# a file goes), said in words the user can act on. The CLI turns any of them into one line; io.open_output and
# io.os_fault catch their share of them (io.OUTPUT_FAULTS) and name the file.
OS_FAULTS: dict[int, str] = {
    errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large",
    errno.EROFS: "read-only file system", errno.EIO: "input/output error", errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted", errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, expected a file", errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "name too long",
}


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
