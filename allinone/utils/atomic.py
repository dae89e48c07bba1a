"""Files that are either fully written or not there: write to a temporary file, fsync, rename."""

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path, write: Callable[[BinaryIO], None]) -> Path:
    """Create ``path`` through ``write(f)`` on a temporary file, then fsync and rename.

    A crash or an exception in ``write`` leaves the previous ``path`` (if any) untouched
    and no temporary file behind.

    Args:
        path: destination file.
        write: fills the open binary file it is given.
    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path
