"""A private temp directory that the process which made it removes when it exits."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def owned_temp_dir(prefix: str) -> Path:
    """A fresh 0700 directory, removed at exit by this process only: forked children (the server's
    workers) inherit atexit handlers, and must not remove what their parent still uses."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)
    return directory
