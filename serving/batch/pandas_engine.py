"""The pandas engine: stream the input by chunks, score each, append it to the output.

Three stages overlap, one thread each, joined by queues of at most QUEUE_CHUNKS chunks: reading
and decoding the next chunk (Arrow's CSV reader or Parquet decoder), scoring this one
(serving.batch.chunks, numpy, Arrow kernels and ONNX Runtime), encoding and writing the previous
one. Each stage spends most of its time in native code that lets go of the GIL, so the stages
use both cores; memory holds at most 2 * QUEUE_CHUNKS + 3 chunks. (The name is the CLI's: the
engine is Arrow and numpy throughout, pandas only for the scikit-learn pipeline.)
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from serving.batch.chunks import score_chunk
from serving.batch.files import BatchError, InputFile, OutputWriter, _one_line, read_chunks
from serving.batch.schema import OutputPlan
from serving.batch.scorer import Counts, Scorer

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
    scorer: Scorer, source: InputFile, plan: OutputPlan, writer: OutputWriter, chunk_size: int
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
    try:
        while (chunk := _get(decoded, stop, reader)) is not _DONE:
            table, stats = score_chunk(scorer, plan, chunk, counts.rows)
            counts.add(stats, counts.rows)
            if not _put(scored, table, stop, writing):
                break
            progress.update(stats.rows)
        _put(scored, _DONE, stop, writing)
        writing.join()
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        reader.join()
        writing.join()
        progress.close()
    for stage in (reader, writing):
        if stage.error is not None:
            raise stage.error
    return counts
