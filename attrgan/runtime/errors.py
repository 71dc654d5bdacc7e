"""The error taxonomy: what is the user's to fix, and what is ours.

``UserError`` is the one class for a user's mistake (a bad file, flag or value): its message
names the file, flag or value and what to do, and the CLI prints it as one ``error:`` line,
exit 1. So do the operating system's named conditions (``user_os_error``): a missing file, a
refused permission, a full disk, a port in use. Anything else is a bug, and the CLI prints
its traceback and exits with ``EXIT_BUG``."""
from __future__ import annotations

import errno

EXIT_USER = 1  # the user's mistake or a named OS condition: one `error:` line
EXIT_BUG = 70  # anything else: a bug in attrgan (sysexits' EX_SOFTWARE), printed with its traceback
REPORT_BUG = ("This is a bug in attrgan, not a problem with your input: please report it with the command you ran "
              "and the traceback above.")

# OS conditions a user can act on (free space, fix a permission, pick another path or port)
USER_ERRNOS = {
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.ENOTDIR: "not a folder",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "address not available on this machine",
}


class UserError(ValueError):
    """A mistake in what the user gave (a file, flag or value); the message says what to change.

    A ``ValueError`` so that callers of the library that catch bad values keep working."""


# the same conditions by type, as raised with a message of ours (FileNotFoundError("x: not found"))
USER_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


def user_os_error(exc: BaseException) -> str | None:
    """The one line for an OS condition the user can act on (naming the file), else None."""
    if not isinstance(exc, OSError) or not (isinstance(exc, USER_OS_ERRORS) or exc.errno in USER_ERRNOS):
        return None
    if exc.filename is None:  # raised with a message of our own, or one that already names its subject
        return str(exc.args[0] if len(exc.args) == 1 else exc.strerror or exc)
    return f"{exc.filename}: {exc.strerror or USER_ERRNOS[exc.errno]}"
