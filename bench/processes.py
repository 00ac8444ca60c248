"""Real server processes, for the bench and the end-to-end tests alike.

A free port, waiting until a URL answers, a process started in its own group and stopped with its
whole group (SIGTERM, then SIGKILL), and the memory of a process tree. Nothing here knows which
server it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

Check = Callable[[], str | None]
"""A readiness check: None once ready, else what it saw instead (say "HTTP 503")."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def exit_code(process: subprocess.Popen) -> int | None:
    """`process`'s exit code (negative: the signal that ended it), or None while it runs.

    Unlike `process.poll()`, this leaves an ended process unreaped: while its zombie stays, its
    pid, and so the id of the group it leads, cannot pass to another process, so `stop` can
    still signal what the process left behind in its group.
    """
    if process.returncode is not None:
        return process.returncode
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped behind Popen's back
        return process.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def http_status(url: str, status: int = 200, timeout: float = 2) -> Check:
    """The check that a GET of `url` answers `status`."""

    def check() -> str | None:
        code = requests.get(url, timeout=timeout).status_code
        return None if code == status else f"HTTP {code}"

    return check


def wait_until(
    check: Check,
    what: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    interval: float = 0.25,
) -> None:
    """Run `check` every `interval` seconds until it passes; fail early if `process` ends.

    `what` (a URL, say) names the awaited server in the errors: a RuntimeError if the process
    ended, a TimeoutError with the last thing the check saw after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and (code := exit_code(process)) is not None:
            raise RuntimeError(f"process exited with {code} before {what} was up")
        try:
            seen = check()
            if seen is None:
                return
            last = seen
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(interval)
    raise TimeoutError(f"{what} not up after {timeout}s ({last})")


def wait_for_http(
    url: str, timeout: float, process: subprocess.Popen | None = None, status: int = 200
) -> None:
    """Poll `url` until it answers `status`; fail early if `process` dies."""
    wait_until(http_status(url, status), url, timeout, process)


@contextmanager
def running(
    command: Sequence[str],
    ready_url: str,
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90,
    check: Check | None = None,
    interval: float = 0.25,
) -> Iterator[subprocess.Popen]:
    """Start `command`, wait until `ready_url` answers 200, yield it, then stop its whole group.

    `check` replaces that readiness check (for servers whose ready URL alone does not prove
    they answer). Output goes to `log`; the log's tail is added to any start-up failure.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_until(check or http_status(ready_url), ready_url, timeout, process, interval)
        except (RuntimeError, TimeoutError) as exc:
            tail = log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{exc}\n--- {log.name} ---\n{tail}") from None
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM the process group, then SIGKILL it if it has not ended within `timeout`.

    The group is signalled while its leader is not reaped, even if the leader has ended, so
    that its children go too; once reaped, its pid may name another group, so it is left alone.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def tree_memory(process: psutil.Process, pss: bool = False) -> dict[int, int]:
    """RSS (or PSS: shared pages split between their processes) of each process in the tree
    rooted at `process`, by pid. A process that ends meanwhile is left out."""
    sizes = {}
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            sizes[proc.pid] = proc.memory_full_info().pss if pss else proc.memory_info().rss
    return sizes
