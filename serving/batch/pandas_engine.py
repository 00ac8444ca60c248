"""The pandas engine: stream the input by chunks, score each, append it to the output.

The stages overlap, joined by queues of at most QUEUE_CHUNKS chunks: one thread reads and decodes
the next chunks (Arrow's CSV reader or Parquet decoder), `threads` threads score chunks side by
side (serving.batch.chunks: numpy, Arrow kernels and ONNX Runtime, which let go of the GIL), and
one thread encodes and writes the scored chunks in input order. So the job uses every core, and
memory holds at most 2 * QUEUE_CHUNKS + `threads` + 2 chunks, whatever the file's size. (The name
is the CLI's: the engine is Arrow and numpy throughout, pandas only for the scikit-learn
pipeline.)
"""

from __future__ import annotations

import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from serving.batch.chunks import score_chunk
from serving.batch.files import BatchError, InputFile, OutputWriter, _one_line, read_chunks
from serving.batch.schema import OutputPlan
from serving.batch.scorer import ChunkStats, Counts, Scorer

QUEUE_CHUNKS = 2
_DONE = object()


class _Stage(threading.Thread):
    """Runs `work` in a thread; what it raises is kept for the main thread to raise."""

    def __init__(self, name: str, work: Callable[[], None]):
        super().__init__(name=name, daemon=True)
        self._work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.error = exc


def _put(
    channel: queue.Queue[Any], item: Any, stop: threading.Event, consumer: threading.Thread
) -> bool:
    """Put unless the job is stopping or nobody takes it any more; False then."""
    while not stop.is_set() and consumer.is_alive():
        try:
            channel.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(channel: queue.Queue[Any], stop: threading.Event, producer: _Stage) -> Any:
    while True:
        try:
            return channel.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set() or (not producer.is_alive() and channel.empty()):
                return _DONE


def _chunks(source: InputFile, chunk_size: int) -> Iterator[pa.Table]:
    try:
        yield from read_chunks(source, chunk_size)
    except (pa.ArrowException, UnicodeDecodeError, EOFError, OSError) as exc:
        raise BatchError(f"input {source.path}: unreadable ({_one_line(exc)})") from None


def run_pandas(
    scorer: Scorer,
    source: InputFile,
    plan: OutputPlan,
    writer: OutputWriter,
    chunk_size: int,
    threads: int = 1,
) -> Counts:
    from tqdm import tqdm

    counts = Counts()
    progress = tqdm(
        total=source.rows,
        unit="rows",
        unit_scale=True,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
    )
    stop = threading.Event()
    decoded: queue.Queue[Any] = queue.Queue(QUEUE_CHUNKS)
    scored: queue.Queue[Any] = queue.Queue(QUEUE_CHUNKS)

    def read() -> None:
        for chunk in _chunks(source, chunk_size):
            if not _put(decoded, chunk, stop, scoring):
                return
        _put(decoded, _DONE, stop, scoring)

    def write() -> None:
        while (table := _get(scored, stop, scoring)) is not _DONE:
            writer.write(table)

    reader = _Stage("batch-read", read)
    scoring = threading.current_thread()
    writing = _Stage("batch-write", write)
    reader.start()
    writing.start()
    pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="batch-score")
    pending: deque[tuple[int, Future[tuple[pa.Table, ChunkStats]]]] = deque()

    def hand_on() -> bool:
        """The oldest chunk's answers to the writer, in input order; False if it has stopped."""
        first, future = pending.popleft()
        table, stats = future.result()
        counts.add(stats, first)
        progress.update(stats.rows)
        return _put(scored, table, stop, writing)

    try:
        read_rows = 0
        while (chunk := _get(decoded, stop, reader)) is not _DONE:
            pending.append((read_rows, pool.submit(score_chunk, scorer, plan, chunk, read_rows)))
            read_rows += chunk.num_rows
            if len(pending) >= max(1, threads) and not hand_on():
                break
        while pending and hand_on():
            pass
        _put(scored, _DONE, stop, writing)
        writing.join()
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        reader.join()
        writing.join()
        progress.close()
    for stage in (reader, writing):
        if stage.error is not None:
            raise stage.error
    return counts
