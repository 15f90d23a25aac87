"""GPU power traces: read a recorded trace into per-GPU power series, rejecting malformed files loudly.

Three formats are read:

**The project's long-format NVML Parquet**, as ``twin record`` (``twin.nvml_recorder``) writes it; also written
by ``write_nvml_parquet``: one row per reading, GPU and field, with exactly these columns

    ========  =======  ==================================================================
    t_s       float64  reading time in seconds (the recorder: since the recording start;
                       any origin works, only differences matter here)
    gpu       integer  NVML device index (0, 1, ...)
    field     string   what was read, SI unit as the suffix of the name (see below)
    value     float64  the reading, in the unit the field name ends with
    ========  =======  ==================================================================

    Fields read here (the recorder's names, ``twin.nvml_recorder.FIELDS``): ``power_W`` (power draw, W; the
    instantaneous reading where the driver has one) and ``power_limit_W`` (the enforced power limit, W).
    Other fields (``power_avg_W``, ``temperature_K``, ``sm_clock_Hz``, ...) may be present and are ignored.
    Within each (gpu, field) the rows are in strictly increasing ``t_s``; the file as a whole may interleave
    GPUs and fields.

**nvidia-smi CSV logs**, as written by ``nvidia-smi --query-gpu=timestamp,index,power.draw,... --format=csv
-lms 100``: a header with units in brackets (``power.draw [W]``), one row per GPU per sample, values with
or without their unit (``--format=csv,nounits``). The power column is the first present of
``power.draw.instant [W]``, ``power.draw [W]``, ``power.draw.average [W]``; ``power.limit [W]`` or
``enforced.power.limit [W]`` is read when present. Timestamps (``2024/01/15 10:23:45.123``, local time
without a zone) are taken as UTC: only differences matter here. Header lines repeated inside the file (logs
appended to each other) are skipped.

**DCGM exporter samples** in the Prometheus text format, e.g.
``DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-..."} 123.4 1700000000123``: the power is
``DCGM_FI_DEV_POWER_USAGE_INSTANT`` if present, else ``DCGM_FI_DEV_POWER_USAGE`` (W); the limit is
``DCGM_FI_DEV_POWER_MGMT_LIMIT`` (W). Timestamps are milliseconds since the epoch. A file whose samples carry
no timestamps (concatenated scrapes) needs ``scrape_interval_s``: the n-th sample of each GPU is then at
n * scrape_interval_s. Mixing lines with and without timestamps is an error.

Errors are ``TraceError`` naming the file, the row and the column. Rows are counted from 1 over the data
rows (the header is not a row); for text formats the message also gives the line of the file.
Checked: missing columns or metrics, unparseable values, NaN or infinite or negative power, timestamps that
are not finite, not increasing or repeated within one GPU's series.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import TraceError

NVML_COLUMNS = ("t_s", "gpu", "field", "value")
FIELD_POWER = "power_W"          # the names twin.nvml_recorder writes
FIELD_LIMIT = "power_limit_W"
SMI_POWER_COLUMNS = ("power.draw.instant [W]", "power.draw [W]", "power.draw.average [W]")
SMI_LIMIT_COLUMNS = ("power.limit [W]", "enforced.power.limit [W]")
SMI_TIME_FORMAT = "%Y/%m/%d %H:%M:%S.%f"
DCGM_POWER_METRICS = ("DCGM_FI_DEV_POWER_USAGE_INSTANT", "DCGM_FI_DEV_POWER_USAGE")
DCGM_LIMIT_METRIC = "DCGM_FI_DEV_POWER_MGMT_LIMIT"


@dataclass(frozen=True, eq=False)
class GpuSeries:
    """The power samples of one GPU: strictly increasing times, finite non-negative power."""

    source: str
    gpu: int
    t_s: np.ndarray
    P_W: np.ndarray
    P_limit_W: float | None     # median of the power-limit samples, None where the trace has none


@dataclass(frozen=True, eq=False)
class GpuTrace:
    """A power trace of one or more GPUs, one series per GPU, in GPU order."""

    source: str
    series: tuple[GpuSeries, ...]

    @property
    def gpus(self) -> tuple[int, ...]:
        return tuple(s.gpu for s in self.series)

    def gpu(self, index: int) -> GpuSeries:
        for s in self.series:
            if s.gpu == index:
                return s
        raise TraceError(f"{self.source}: no GPU {index} in the trace (GPUs: {list(self.gpus)})")


def load_gpu_trace(path: str | os.PathLike, *, scrape_interval_s: float | None = None) -> GpuTrace:
    """Read a trace in any of the three formats: Parquet by its suffix, DCGM or nvidia-smi by content."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: no such file")
    if p.suffix.lower() == ".parquet":
        return load_nvml_parquet(p)
    with open(p, encoding="utf-8", errors="replace") as f:
        first = next((line.strip() for line in f if line.strip()), "")
    if first.startswith("#") or first.startswith("DCGM_"):
        return load_dcgm_text(p, scrape_interval_s=scrape_interval_s)
    return load_nvidia_smi_csv(p)


# --- the project's long-format Parquet ----------------------------------------------------------------------

def write_nvml_parquet(path: str | os.PathLike, t_s, gpu, field, value) -> None:
    """Write samples in the long format above (columns t_s, gpu, field, value; SI units in the field names)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "t_s": pa.array(np.asarray(t_s, dtype=np.float64)),
        "gpu": pa.array(np.asarray(gpu, dtype=np.int64)),
        "field": pa.array([str(f) for f in field], type=pa.string()),
        "value": pa.array(np.asarray(value, dtype=np.float64)),
    })
    pq.write_table(table, str(path))


def load_nvml_parquet(path: str | os.PathLike) -> GpuTrace:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = str(path)
    try:
        table = pq.read_table(src)
    except (pa.ArrowException, OSError) as e:
        raise TraceError(f"{src}: row -, column -: not a readable Parquet file: {e}") from e
    for col in NVML_COLUMNS:
        if col not in table.column_names:
            raise TraceError(f"{src}: row -, column {col!r}: missing column (found {table.column_names})")
    try:
        t = table.column("t_s").to_numpy(zero_copy_only=False).astype(np.float64)
        g_raw = table.column("gpu").to_numpy(zero_copy_only=False)
        fld = np.asarray(table.column("field").to_pylist(), dtype=object)
        v = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise TraceError(f"{src}: row -, column -: a column has the wrong type: {e}") from e
    g_float = np.asarray(g_raw, dtype=np.float64)
    bad = ~np.isfinite(g_float) | (g_float != np.round(g_float)) | (g_float < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TraceError(f"{src}: row {i + 1}, column 'gpu': not a GPU index: {g_raw[i]!r}")
    g = g_float.astype(np.int64)
    rows = np.arange(t.size)
    out = []
    for gi in np.unique(g):
        pm = (g == gi) & (fld == FIELD_POWER)
        if not pm.any():
            continue
        t_p, P, r_p = t[pm], v[pm], rows[pm]
        _check_times(src, t_p, r_p + 1, "t_s", "row")
        _check_power(src, P, r_p + 1, "value", "row")
        lm = (g == gi) & (fld == FIELD_LIMIT) & np.isfinite(v)
        out.append(GpuSeries(src, int(gi), _frozen(t_p), _frozen(P), _median_or_none(v[lm])))
    if not out:
        raise TraceError(f"{src}: row -, column 'field': no rows with field {FIELD_POWER!r}")
    return GpuTrace(src, tuple(out))


# --- nvidia-smi CSV -----------------------------------------------------------------------------------------

def load_nvidia_smi_csv(path: str | os.PathLike) -> GpuTrace:
    src = str(path)
    with open(src, encoding="utf-8", errors="replace", newline="") as f:
        lines = list(csv.reader(f, skipinitialspace=True))
    header_at = next((i for i, r in enumerate(lines) if any(c.strip() for c in r)), None)
    if header_at is None:
        raise TraceError(f"{src}: row -, column -: empty file")
    header = [c.strip() for c in lines[header_at]]
    power_col = next((c for c in SMI_POWER_COLUMNS if c in header), None)
    limit_col = next((c for c in SMI_LIMIT_COLUMNS if c in header), None)
    for need in ("timestamp", "index"):
        if need not in header:
            raise TraceError(f"{src}: row - (line {header_at + 1}), column {need!r}: missing column "
                             f"(header: {header})")
    if power_col is None:
        raise TraceError(f"{src}: row - (line {header_at + 1}), column 'power.draw [W]': missing column "
                         f"(header: {header}; one of {list(SMI_POWER_COLUMNS)} is needed)")
    i_t, i_g, i_p = header.index("timestamp"), header.index("index"), header.index(power_col)
    i_l = header.index(limit_col) if limit_col else None

    stamps, gpus, powers, limits, rows, line_nos = [], [], [], [], [], []
    row = 0
    for ln, rec in enumerate(lines[header_at + 1:], start=header_at + 2):
        cells = [c.strip() for c in rec]
        if not any(cells) or cells == header:
            continue
        row += 1
        where = f"{src}: row {row} (line {ln})"
        if len(cells) != len(header):
            raise TraceError(f"{where}, column -: {len(cells)} fields where the header has {len(header)}")
        stamps.append(cells[i_t])
        gpus.append(_int_cell(cells[i_g], where, "index"))
        powers.append(_watts_cell(cells[i_p], where, power_col))
        limits.append(_watts_cell(cells[i_l], where, limit_col, strict=False) if i_l is not None else math.nan)
        rows.append(row)
        line_nos.append(ln)
    if not rows:
        raise TraceError(f"{src}: row -, column -: no data rows")
    t = _smi_times(src, stamps, rows, line_nos)
    return _group(src, t, np.array(gpus), np.array(powers), np.array(limits), np.array(rows),
                  np.array(line_nos), "timestamp", power_col)


def _smi_times(src, stamps, rows, line_nos) -> np.ndarray:
    import pandas as pd

    ts = pd.to_datetime(pd.Series(stamps), format=SMI_TIME_FORMAT, errors="coerce")
    if ts.isna().any():
        ts2 = pd.to_datetime(pd.Series(stamps), format="%Y/%m/%d %H:%M:%S", errors="coerce")
        ts = ts.fillna(ts2)
    bad = np.flatnonzero(ts.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{src}: row {rows[i]} (line {line_nos[i]}), column 'timestamp': "
                         f"not a time like 2024/01/15 10:23:45.123: {stamps[i]!r}")
    epoch = pd.Timestamp(datetime(1970, 1, 1, tzinfo=timezone.utc)).tz_localize(None)
    return ((ts - epoch).dt.total_seconds()).to_numpy(dtype=np.float64)


def _int_cell(cell: str, where: str, col: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise TraceError(f"{where}, column {col!r}: not a GPU index: {cell!r}") from None


def _watts_cell(cell: str, where: str, col: str, strict: bool = True) -> float:
    s = cell.strip()
    if s.endswith("W"):
        s = s[:-1].strip()
    try:
        v = float(s)
    except ValueError:
        if strict:
            raise TraceError(f"{where}, column {col!r}: not a power in W: {cell!r}") from None
        return math.nan
    return v


# --- DCGM exporter (Prometheus text) ------------------------------------------------------------------------

_PROM_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
                        r"(?:\s+(?P<ts>\S+))?\s*$")
_PROM_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def load_dcgm_text(path: str | os.PathLike, *, scrape_interval_s: float | None = None) -> GpuTrace:
    src = str(path)
    samples: dict[str, list[tuple]] = {}
    with open(src, encoding="utf-8", errors="replace") as f:
        for ln, line in enumerate(f, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = _PROM_LINE.match(s)
            if m is None:
                raise TraceError(f"{src}: row - (line {ln}), column -: not a Prometheus sample line: {s[:80]!r}")
            name = m.group("name")
            if name not in DCGM_POWER_METRICS and name != DCGM_LIMIT_METRIC:
                continue
            labels = dict(_PROM_LABEL.findall(m.group("labels") or ""))
            samples.setdefault(name, []).append((ln, labels, m.group("value"), m.group("ts")))
    power_metric = next((n for n in DCGM_POWER_METRICS if n in samples), None)
    if power_metric is None:
        raise TraceError(f"{src}: row -, column {DCGM_POWER_METRICS[-1]!r}: no power samples in the file")

    def parse(name):
        recs = samples.get(name, [])
        t, g, v, rows, lns = [], [], [], [], []
        with_ts = {r[3] is not None for r in recs}
        if len(with_ts) > 1:
            ln = next(r[0] for r in recs if r[3] is None)
            raise TraceError(f"{src}: row - (line {ln}), column 'timestamp': some {name} samples have "
                             "timestamps and others do not")
        counters: dict[int, int] = {}
        for row, (ln, labels, val, ts) in enumerate(recs, start=1):
            where = f"{src}: row {row} (line {ln})"
            if "gpu" not in labels:
                raise TraceError(f"{where}, column '{name}{{gpu}}': the sample has no gpu label")
            gi = _int_cell(labels["gpu"], where, f"{name}{{gpu}}")
            try:
                x = float(val)
            except ValueError:
                raise TraceError(f"{where}, column '{name}': not a number: {val!r}") from None
            if ts is not None:
                try:
                    tt = int(ts) / 1000.0
                except ValueError:
                    raise TraceError(f"{where}, column 'timestamp': not a time in ms: {ts!r}") from None
            else:
                if scrape_interval_s is None or not scrape_interval_s > 0:
                    raise TraceError(f"{where}, column 'timestamp': the samples carry no timestamps; "
                                     "give the scrape interval (scrape_interval_s)")
                n = counters.get(gi, 0)
                counters[gi] = n + 1
                tt = n * scrape_interval_s
            t.append(tt), g.append(gi), v.append(x), rows.append(row), lns.append(ln)
        return np.array(t, float), np.array(g, int), np.array(v, float), np.array(rows, int), np.array(lns, int)

    t, g, P, rows, lns = parse(power_metric)
    lt, lg, lv, _, _ = parse(DCGM_LIMIT_METRIC)
    limits = np.full(t.size, math.nan)
    for gi in np.unique(lg):
        med = _median_or_none(lv[(lg == gi) & np.isfinite(lv)])
        if med is not None:
            limits[g == gi] = med
    return _group(src, t, g, P, limits, rows, lns, "timestamp", power_metric)


# --- shared checks --------------------------------------------------------------------------------------------

def _group(src, t, g, P, limits, rows, lines, t_col, p_col) -> GpuTrace:
    out = []
    for gi in np.unique(g):
        m = g == gi
        lab = [f"{r} (line {ln})" for r, ln in zip(rows[m], lines[m])]
        _check_times(src, t[m], lab, t_col, "row")
        _check_power(src, P[m], lab, p_col, "row")
        out.append(GpuSeries(src, int(gi), _frozen(t[m]), _frozen(P[m]), _median_or_none(limits[m])))
    return GpuTrace(src, tuple(out))


def _check_times(src, t, labels, col, word) -> None:
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{src}: {word} {labels[i]}, column {col!r}: time is not finite: {float(t[i])}")
    d = np.diff(t)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        what = "repeated" if d[i - 1] == 0 else "earlier than the previous sample of this GPU"
        raise TraceError(f"{src}: {word} {labels[i]}, column {col!r}: time {what} "
                         f"({float(t[i]):.6f} s after {float(t[i - 1]):.6f} s)")


def _check_power(src, P, labels, col, word) -> None:
    bad = np.flatnonzero(~np.isfinite(P))
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{src}: {word} {labels[i]}, column {col!r}: power is not a number: {float(P[i])}")
    bad = np.flatnonzero(P < 0)
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{src}: {word} {labels[i]}, column {col!r}: negative power: {float(P[i])} W")


def _median_or_none(x: np.ndarray) -> float | None:
    return float(np.median(x)) if x.size else None


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a
