"""The shadow scorer: the process that scores the workers' answered rows with the shadow version
under `python -m serving --shadow ALIAS` (`python -m serving.server.shadow_scorer`, started and
restarted by the master, stopped with it: serving.server.agent_process's `ScorerProcess`).

Scored in a worker, shadow work took that worker's GIL from the requests it serves; here it has an
interpreter of its own. It loads the shadow alias's version as a worker does (what the model
agent stages, followed by a watcher: hot reload and POST /admin/reload included) and reads the
datagrams the workers send (serving.evidence.relay): a reader thread drains the socket at once
into a queue of at most `--shadow-queue` rows per worker (what does not fit is counted as
dropped), and the main thread scores it, SLICE_ROWS rows a call, yielding the CPU between calls,
the first request of each datagram alone and timed (serving.evidence.shadow: the counts, the
latency histogram and the errors, in the server's multiprocess metrics). It runs at
a lower CPU priority than the workers (NICENESS): on a busy machine the requests come first, and
shadow work that cannot keep up is dropped and counted, never queued without bound. Rows it holds
when it dies (SIGKILL, a crash) are lost to the counts; the master starts another, and rows sent
while none listens are counted as dropped by the workers.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

from serving.config import Settings
from serving.evidence.hook import slices
from serving.evidence.relay import MAX_DATAGRAM, Item, decode, listen
from serving.evidence.shadow import Shadow
from serving.request_log import configure_logging
from serving.rundir import AGENT_ENV, RUN_DIR_ENV, ReloadFlag
from serving.stores import Stores
from serving.watcher import Watcher

log = logging.getLogger("serving.server.shadow_scorer")

NICENESS = 5  # added to the scorer's CPU niceness: the workers' requests come first
SLICE_ROWS = 64  # rows scored between two yields of the CPU
PARENT_CHECK = 1.0  # seconds between two looks at whether the master is still there


class Inbox:
    """The scorer's queue: datagrams' items, at most `limit` rows, the rest counted as dropped."""

    def __init__(self, shadow: Shadow, limit: int):
        self.shadow, self.limit = shadow, limit
        self._items: collections.deque[list[Item]] = collections.deque()
        self._rows = 0
        self._ready = threading.Condition()

    def put(self, items: list[Item]) -> None:
        rows = sum(len(batch) for _, batch, _ in items)
        with self._ready:  # as the workers' queue: a datagram gets in whole when none waits
            full = bool(self._rows) and self._rows + rows > self.limit
            if not full:
                self._items.append(items)
                self._rows += rows
                self._ready.notify()
        if full:
            for version, batch, _ in items:
                self.shadow.dropped(version, len(batch))

    def take(self, timeout: float) -> list[Item] | None:
        with self._ready:
            if not self._items and not self._ready.wait(timeout):
                return None
            items = self._items.popleft()
            self._rows -= sum(len(batch) for _, batch, _ in items)
            return items


def receive(receiver: socket.socket, inbox: Inbox) -> None:
    """The reader thread: every datagram into the inbox as soon as it arrives."""
    while True:
        datagram = receiver.recv(MAX_DATAGRAM)
        try:
            items = decode(datagram)
        except ValueError as exc:  # not from a worker of ours: nothing to count it against
            log.warning("ignored a datagram: %s", exc)
            continue
        inbox.put(items)


def serve(shadow: Shadow, inbox: Inbox, parent: int) -> None:
    """Score what arrives until the master is gone, SLICE_ROWS rows at a time, the CPU given
    back between slices."""
    while os.getppid() == parent:
        items = inbox.take(PARENT_CHECK)
        if items is None:
            shadow.store.ensure()  # idle: load a version the agent staged, before rows come
            continue
        for number, part in enumerate(slices(items, SLICE_ROWS)):
            if number:
                # a slice is a fraction of a millisecond; a worker waiting for this core gets
                # it now rather than at the scheduler's next tick (a datagram scored in one go
                # held a core ~2 ms: +20% on the one-row p99 at 32 connections; 16-row slices,
                # each with a timed request, cost 17% of a core at 5,200 rows/s)
                os.sched_yield()
            shadow.score(part, timed=number == 0)  # one request timed per datagram


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m serving.server.shadow_scorer")
    parser.add_argument("--socket", type=Path, required=True, help="where to listen")
    parser.add_argument("--parent", type=int, required=True, help="exit when this pid is gone")
    args = parser.parse_args(argv)
    receiver = listen(args.socket)  # first: the workers' datagrams queue while the model loads
    settings = Settings.from_env()  # the master exported its settings
    configure_logging(settings.log_level)
    os.nice(NICENESS)
    directory = Path(os.environ[RUN_DIR_ENV])
    agent_dir = directory if os.environ.get(AGENT_ENV) == "1" else None
    store = Stores.from_settings(settings, agent_dir=agent_dir).by_alias(settings.shadow)
    store.try_load()
    Watcher.from_settings(store, ReloadFlag(directory / "reload"), settings).start()
    shadow = Shadow(store)
    inbox = Inbox(shadow, settings.shadow_queue * max(1, settings.workers))
    reader = threading.Thread(
        target=receive, args=(receiver, inbox), name="shadow-receive", daemon=True
    )
    reader.start()
    log.info("shadow scorer ready for %s on %s", store.model_uri, args.socket)
    serve(shadow, inbox, args.parent)


if __name__ == "__main__":
    main()
