"""Write a table chunk by chunk, atomically: a temporary file beside the target, renamed at the end.

For outputs too large to hold in memory at once (batch scoring of millions of
customers). Parquet chunks are appended as row groups with
:class:`pyarrow.parquet.ParquetWriter` (schema from the first chunk; text columns
dictionary-encoded, numbers plain); CSV chunks are
appended as text, with the header once. Until :meth:`ChunkedTableWriter.close`
succeeds, the target is untouched; on error the temporary file is removed, so a crash
never leaves a half-written table. Reading the result gives the same frame as writing
the concatenated chunks with :func:`custscore.serving.output.write_table_atomic` (CSV text
cells that look like formulas are neutralised the same way). :meth:`ChunkedTableWriter.close`
can publish companion files (the metadata sidecar) together with the table, both or
neither (:func:`custscore.atomic.publish_together`).
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from custscore.atomic import discard, finish, open_temp_beside, sha256_of, write_atomic_together
from custscore.serving.output import check_output_path, frame_to_csv

if TYPE_CHECKING:
    from custscore.serving.db_output import DatabaseOutput

#: Companion files of a table, from the SHA-256 of the finished table: target -> bytes.
Companions = Callable[[str], Mapping[Path, bytes]]


class TableWriter:
    """The interface of the chunk writers (a file, a database table): ``write`` chunks, then
    ``close`` / ``close_with_sidecar`` publishes them all or ``abort`` drops them all. As a
    context manager it closes on success and aborts on an exception."""

    n_rows: int

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def close_with_sidecar(self, sidecar: Callable[[Optional[str]], bytes]):
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ChunkedTableWriter(TableWriter):
    """Context manager appending DataFrame chunks to ``path`` (CSV or Parquet by suffix).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with ChunkedTableWriter(folder / "t.csv") as out:
    ...     out.write(pd.DataFrame({"a": [1, 2]})); out.write(pd.DataFrame({"a": [3]}))
    >>> (folder / "t.csv").read_text().split()
    ['a', '1', '2', '3']
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.target: Path = check_output_path(path)
        self.csv = self.target.suffix.lower() == ".csv"
        self._handle, self.tmp = open_temp_beside(self.target)
        self._parquet: Optional[pq.ParquetWriter] = None
        self._thread: Optional[ThreadPoolExecutor] = None
        self._pending: Optional[Future] = None
        self.n_rows = 0
        self.n_chunks = 0
        self.closed = False

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (same columns and dtypes as the first chunk).

        The chunk is encoded and written on a thread of its own while the caller scores the
        next one (Parquet and Arrow compute release the interpreter lock); one chunk at a time,
        in order. An error of that write is raised by the next ``write`` or ``close``.
        """
        self._finish_pending()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custscore-writer")
        self._pending = self._thread.submit(self._write_now, frame, self.n_chunks == 0)
        self.n_rows += len(frame)
        self.n_chunks += 1

    def _write_now(self, frame: pd.DataFrame, first: bool) -> None:
        if self.csv:
            frame_to_csv(frame, self._handle, header=first)
            return
        if self._parquet is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._parquet = pq.ParquetWriter(self._handle, table.schema, use_dictionary=_text_columns(table.schema))
        else:
            table = pa.Table.from_pandas(frame, schema=self._parquet.schema, preserve_index=False)
        self._parquet.write_table(table)

    def _finish_pending(self) -> None:
        """Wait for the chunk being written; its error (if any) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    def close(self, companions: Optional[Companions] = None) -> Path:
        """Finish the file, fsync it and rename it onto the target.

        ``companions(sha256_of_the_table)`` gives files (target -> bytes) published with
        it: all written first, then renamed, the table last (both or neither). Closing
        twice is a no-op.
        """
        if self.closed:
            return self.target
        try:
            self._finish_pending()
            self._stop_thread()
            if self._parquet is not None:
                self._parquet.close()
            finish(self._handle, self.tmp, self.target)
            extra = companions(sha256_of(self.tmp)) if companions is not None else {}
            write_atomic_together([(target, _writer(data)) for target, data in extra.items()],
                                  last=(self._handle, self.tmp, self.target))
        except BaseException:
            self.abort()
            raise
        self.closed = True
        return self.target

    def close_with_sidecar(self, sidecar: Callable[[str], bytes]) -> Path:
        """:meth:`close`, publishing ``sidecar(sha256_of_the_table)`` as the table's sidecar file
        (:func:`custscore.serving.sidecar.sidecar_path`), both or neither."""
        from custscore.serving.sidecar import sidecar_path

        return self.close(lambda sha256: {sidecar_path(self.target): sidecar(sha256)})

    def abort(self) -> None:
        """Drop the temporary file; the target keeps its previous content (or stays absent)."""
        if self.closed:
            return
        try:
            self._finish_pending()
        except BaseException:  # the file is discarded anyway
            pass
        self._stop_thread()
        if self._parquet is not None:
            try:
                self._parquet.close()
            except Exception:  # the file is discarded anyway
                pass
            self._parquet = None
        discard(self._handle, self.tmp)


def open_table_writer(target: "str | os.PathLike | DatabaseOutput") -> TableWriter:
    """The chunk writer for ``target``: a file (:class:`ChunkedTableWriter`) or a database table
    (:class:`~custscore.serving.db_output.DatabaseTableWriter`); both write, close
    (``close_with_sidecar``) and abort alike."""
    from custscore.serving.db_output import DatabaseOutput, DatabaseTableWriter

    return DatabaseTableWriter(target) if isinstance(target, DatabaseOutput) else ChunkedTableWriter(target)


def _text_columns(schema: pa.Schema) -> list[str]:
    """The columns Parquet dictionary-encodes: the text ones (segment names, policies, reasons,
    constants repeat a few values). Numbers are written plain: their dictionary would overflow
    for most columns and the attempt costs a quarter of the writing (benchmarks/ORDERS_RESULTS.md)."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _writer(data: bytes) -> Callable[[object], object]:
    return lambda handle: handle.write(data)
