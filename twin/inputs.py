"""Time-series inputs of a run (weather, heat demand, prices, grid carbon, IT load) and their step values.

A series file is CSV or Parquet with a time column, either ``time`` (ISO 8601 timestamps; naive ones are
UTC) or ``time_s`` (seconds from the run's start), and value columns whose names carry their units. Edge
units are converted to SI once, when read (``T_air_C`` is offered as ``T_air_K``; see twin.units).

The value a component sees during a step [t, t+h) is the exact mean of the series over that step, for
``linear`` interpolation between samples (temperatures, power) or ``previous`` (hold: prices, tariffs).
Values are computed chunk by chunk, so memory does not grow with the length of the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ScenarioError
from .units import to_si

INTERPOLATIONS = ("linear", "previous")


@dataclass
class Series:
    """One input file, converted to SI, with times in seconds from the run start."""

    name: str
    path: Path
    t_s: np.ndarray                 # strictly increasing
    columns: dict[str, np.ndarray]  # SI name -> values
    interpolate: str = "linear"

    def cumulative(self, column: str, t_query_s: np.ndarray) -> np.ndarray:
        """Integral of the interpolated series from t_s[0] to each query time (value * s)."""
        t, v = self.t_s, self.columns[column]
        if self.interpolate == "linear":
            seg = 0.5 * (v[1:] + v[:-1]) * np.diff(t)
        else:
            seg = v[:-1] * np.diff(t)
        F = np.concatenate(([0.0], np.cumsum(seg)))
        i = np.clip(np.searchsorted(t, t_query_s, side="right") - 1, 0, len(t) - 2)
        dt = t_query_s - t[i]
        if self.interpolate == "linear":
            slope = (v[i + 1] - v[i]) / (t[i + 1] - t[i])
            part = v[i] * dt + 0.5 * slope * dt * dt
        else:
            part = v[i] * dt
        return F[i] + part

    def step_means(self, column: str, t0_s: np.ndarray, h_s: float) -> np.ndarray:
        """Mean of the series over [t0, t0 + h) for each t0."""
        return (self.cumulative(column, t0_s + h_s) - self.cumulative(column, t0_s)) / h_s


def read_series(name: str, path: Path, start: pd.Timestamp, interpolate: str = "linear") -> Series:
    """Read and check an input file. Every problem names the file, the row and the column."""
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, comment="#")
    except FileNotFoundError as e:
        raise ScenarioError(f"{path}: no such input file") from e
    except Exception as e:  # pandas/pyarrow parse errors
        raise ScenarioError(f"{path}: cannot read: {e}") from e
    if "time" in df.columns:
        try:
            times = pd.to_datetime(df["time"], utc=True)
        except (ValueError, TypeError) as e:
            raise ScenarioError(f"{path}, column 'time': expected ISO 8601 timestamps: {e}") from e
        t_s = (times - start.tz_localize("UTC") if start.tzinfo is None else times - start).dt.total_seconds().to_numpy()
        value_cols = [c for c in df.columns if c != "time"]
    elif "time_s" in df.columns:
        t_s = pd.to_numeric(df["time_s"], errors="coerce").to_numpy(dtype=float)
        bad_t = np.flatnonzero(~np.isfinite(t_s))
        if len(bad_t):
            raise ScenarioError(f"{path}, row {int(bad_t[0]) + 1}, column 'time_s': expected seconds, "
                                f"found {df['time_s'].iloc[bad_t[0]]!r}")
        value_cols = [c for c in df.columns if c != "time_s"]
    else:
        raise ScenarioError(f"{path}: expected a time column 'time' (ISO 8601) or 'time_s' (seconds from the run start); "
                            f"found columns {list(df.columns)}")
    time_col = "time" if "time" in df.columns else "time_s"
    if len(t_s) < 2:
        raise ScenarioError(f"{path}: expected at least two rows of data, found {len(t_s)}")
    bad = np.flatnonzero(~(np.diff(t_s) > 0))
    if len(bad):
        r = int(bad[0]) + 2  # data rows are 1-based; the later row of the pair is the offender
        raise ScenarioError(f"{path}, row {r}, column {time_col!r}: times must increase strictly; "
                            f"found {df[time_col].iloc[r - 1]} after {df[time_col].iloc[r - 2]}")
    columns = {}
    for c in value_cols:
        values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        nan = np.flatnonzero(~np.isfinite(values))
        if len(nan):
            raise ScenarioError(f"{path}, row {int(nan[0]) + 1}, column {c!r}: expected a number, found {df[c].iloc[nan[0]]!r}")
        si, factor, offset = to_si(c)
        columns[si] = values * factor + offset
    return Series(name, path, t_s, columns, interpolate)


class InputCursor:
    """Step means of the used input columns, produced chunk by chunk for steps k = 0, 1, ..."""

    def __init__(self, series: dict[str, Series], used: list[tuple[str, str]], h_s: float, chunk_steps: int = 4096):
        self.series, self.used, self.h_s, self.chunk_steps = series, used, h_s, chunk_steps
        self._k0 = -1
        self._buf = np.zeros((0, len(used)))

    def row(self, k: int) -> np.ndarray:
        """Input values for step k (an array over ``used``)."""
        if not (self._k0 <= k < self._k0 + len(self._buf)):
            self._fill(k)
        return self._buf[k - self._k0]

    def rows(self, k: int, n_max: int) -> np.ndarray:
        """Input values of steps k, k+1, ... (at most n_max rows, fewer at the end of the buffered chunk)."""
        if not (self._k0 <= k < self._k0 + len(self._buf)):
            self._fill(k)
        i = k - self._k0
        return self._buf[i:i + n_max]

    def _fill(self, k: int) -> None:
        t0 = (k + np.arange(self.chunk_steps)) * self.h_s
        self._buf = np.empty((self.chunk_steps, len(self.used)))
        for j, (s, c) in enumerate(self.used):
            self._buf[:, j] = self.series[s].step_means(c, t0, self.h_s)
        self._k0 = k
