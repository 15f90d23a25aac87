"""Streaming outputs of a run: time series to Parquet in row groups, so memory stays flat however long the run.

A row holds every recorded signal at ``time_s``: component outputs at that time, and the input values used
during the step that ended there (row 0: the state after initialization and the inputs of the first step).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class SeriesWriter:
    """Appends rows to a Parquet file in chunks; a closed file is always readable."""

    def __init__(self, path: Path, columns: list[str], chunk_rows: int = 8192):
        self.path = Path(path)
        self.columns = ["time_s"] + list(columns)
        self.schema = pa.schema([(c, pa.float64()) for c in self.columns])
        self.chunk_rows = chunk_rows
        self._buf = np.empty((chunk_rows, len(self.columns)))
        self._n = 0
        self.rows_written = 0
        self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")

    def append(self, t_s: float, row: np.ndarray) -> None:
        b = self._buf[self._n]
        b[0] = t_s
        b[1:] = row
        self._n += 1
        if self._n == self.chunk_rows:
            self.flush()

    def space(self) -> int:
        """Rows that fit before the next write to the file."""
        return self.chunk_rows - self._n

    def reserve(self, m: int) -> np.ndarray:
        """The next m rows of the buffer (m <= space()), to be filled in place and then ``commit``-ted."""
        return self._buf[self._n:self._n + m]

    def commit(self, m: int) -> None:
        self._n += m
        if self._n == self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self._n and self._writer is not None:
            table = pa.Table.from_arrays([pa.array(self._buf[: self._n, j]) for j in range(len(self.columns))],
                                         schema=self.schema)
            self._writer.write_table(table, row_group_size=self.chunk_rows)
            self.rows_written += self._n
            self._n = 0

    def copy_from(self, path: Path, n_rows: int) -> None:
        """Copy the first n_rows of an earlier run's file (same columns), row group by row group."""
        src = pq.ParquetFile(path)
        if src.schema_arrow.names != self.columns:
            raise ValueError(f"{path}: its columns differ from this run's")
        left = n_rows
        for i in range(src.num_row_groups):
            if left <= 0:
                break
            t = src.read_row_group(i)
            if t.num_rows > left:
                t = t.slice(0, left)
            self._writer.write_table(t.cast(self.schema))
            self.rows_written += t.num_rows
            left -= t.num_rows
        if left > 0:
            raise ValueError(f"{path}: has fewer than {n_rows} rows")

    def close(self) -> None:
        if self._writer is not None:
            self.flush()
            self._writer.close()
            self._writer = None
