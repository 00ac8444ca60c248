"""A server's run directory, and the reload flag in it.

`python -m serving`'s master makes one private directory per server: the model agent's state and
request files (serving.registry.protocol), the versions it stages, and the reload flag. Its path
reaches the workers as RUN_DIR_ENV; AGENT_ENV says whether an agent stages for them, SCORER_ENV
where the shadow scorer process listens (under --shadow). This module
imports nothing heavy: the master, which loads no app, uses it.
"""

from __future__ import annotations

import time
from pathlib import Path

from serving.tempdirs import owned_temp_dir

RUN_DIR_ENV = "SERVING_RUN_DIRECTORY"  # the master's run directory, for the workers
AGENT_ENV = "SERVING_AGENT"  # "1" when a model agent stages versions for the workers
SCORER_ENV = "SERVING_SHADOW_SCORER"  # the shadow scorer's socket, when one scores for them


def run_directory() -> Path:
    """A private directory for this server's agent state, staged models and reload flag."""
    return owned_temp_dir("serving-run-")


class ReloadFlag:
    """A file whose change tells every worker to reload: made by the master before the fork."""

    def __init__(self, path: Path):
        self.path = path
        self.touched_here: int | None = None  # this process's own touch is not news to it

    @classmethod
    def create(cls, directory: Path | None = None) -> ReloadFlag:
        """A flag in `directory` (its owner removes it), else in a temp dir removed at exit."""
        if directory is not None:
            flag = cls(directory / "reload")
            flag.path.write_text("0")
            return flag
        return cls.create(owned_temp_dir("serving-reload-"))

    def stamp(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def touch(self) -> None:
        self.path.write_text(str(time.time_ns()))
        self.touched_here = self.stamp()
