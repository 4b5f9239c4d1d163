"""Write a table chunk by chunk, atomically: a temporary file beside the target, renamed at the end.

For outputs too large to hold in memory at once (batch scoring of millions of
customers). Parquet chunks are appended as row groups with
:class:`pyarrow.parquet.ParquetWriter` (schema from the first chunk); CSV chunks are
appended as text, with the header once. Until :meth:`ChunkedTableWriter.close`
succeeds, the target is untouched; on error the temporary file is removed, so a crash
never leaves a half-written table. Reading the result gives the same frame as writing
the concatenated chunks with :func:`custscore.serving.output.write_table_atomic`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from custscore.atomic import discard, open_temp_beside, publish
from custscore.serving.output import check_output_path


class ChunkedTableWriter:
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
        self.n_rows = 0
        self.n_chunks = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (same columns and dtypes as the first chunk)."""
        if self.csv:
            frame.to_csv(self._handle, index=False, header=self.n_chunks == 0)
        else:
            if self._parquet is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._parquet = pq.ParquetWriter(self._handle, table.schema)
            else:
                table = pa.Table.from_pandas(frame, schema=self._parquet.schema, preserve_index=False)
            self._parquet.write_table(table)
        self.n_rows += len(frame)
        self.n_chunks += 1

    def close(self) -> Path:
        """Finish the file, fsync it and rename it onto the target."""
        try:
            if self._parquet is not None:
                self._parquet.close()
            publish(self._handle, self.tmp, self.target)
        except BaseException:
            self.abort()
            raise
        return self.target

    def abort(self) -> None:
        """Drop the temporary file; the target keeps its previous content (or stays absent)."""
        if self._parquet is not None:
            try:
                self._parquet.close()
            except Exception:  # the file is discarded anyway
                pass
            self._parquet = None
        discard(self._handle, self.tmp)

    def __enter__(self) -> "ChunkedTableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
