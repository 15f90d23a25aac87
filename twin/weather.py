"""Weather years from the files people have: EnergyPlus EPW, and the DWD test reference years (TRY 2010).

A ``WeatherYear`` is hourly, one reading per row in file order, with ``utc_offset_h`` to reach UTC from the
file's local standard time (no daylight saving), and columns with their units: ``T_air_C``, ``RH_pct`` and
``p_Pa`` always; ``T_dew_C`` from EPW files. Both formats label a row with the hour it ends (1..24), and
their temperature, humidity and pressure are readings at that time, so row k of a year is the reading at
k o'clock from 1 January 00:00. ``to_inputs_csv`` writes the scenario input format (``twin.inputs``: a
``time`` column in UTC, edge units in the names) laid onto a chosen calendar year, which typical years need
(their months come from different years), wrapping around the year's ends so that the whole UTC year is
covered whatever the time zone.

Formats:

* **EPW** (EnergyPlus weather): eight header lines (``LOCATION`` gives the place and the time zone), then one
  row per hour; field 4 is the hour ending (1..24), fields 7, 8, 9, 10 dry-bulb and dew-point temperature (C),
  relative humidity (%) and station pressure (Pa). EPW's missing-value codes (99.9 C, 999 %, 999999 Pa) are
  errors: a year with holes must be filled by whoever knows the site.
* **DWD TRY 2010** ``.dat``: a header of free text ending in a line ``***``, then whitespace-separated rows
  ``RG IS MM DD HH N WR WG t p x RF W B D IK A E IL`` (HH: hour ending 1..24 in CET, t: C, p: hPa, RF: %).
  The same columns as CSV (``T_air_degC``, ``RH_pct``, ``p_hPa``, ``month``, ``day``, ``hour_1to24``) are read
  too: the form they are shared in here.

Errors are ``TraceError`` naming the file, the line and the field.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TraceError

CET_UTC_OFFSET_H = 1.0
EPW_HEADER_LINES = 8
EPW_FIELDS = {"T_air_C": (6, 99.9), "T_dew_C": (7, 99.9), "RH_pct": (8, 999.0), "p_Pa": (9, 999999.0)}
TRY_DAT_COLUMNS = ("RG", "IS", "MM", "DD", "HH", "N", "WR", "WG", "t", "p", "x", "RF", "W", "B", "D", "IK", "A",
                   "E", "IL")
TRY_CSV_COLUMNS = {"month": "MM", "day": "DD", "hour_1to24": "HH", "T_air_degC": "t", "p_hPa": "p", "RH_pct": "RF"}
T_AIR_RANGE_C = (-90.0, 60.0)


@dataclass(frozen=True)
class WeatherYear:
    source: str
    location: str
    utc_offset_h: float          # local standard time = UTC + utc_offset_h
    frame: pd.DataFrame          # one reading per hour in file order (index 1..n); on_year gives it times

    @property
    def T_air_C(self) -> pd.Series:
        return self.frame["T_air_C"]

    def on_year(self, year: int) -> pd.DataFrame:
        """The readings at their local standard times in ``year`` (row k at 1 January 00:00 + k h); the file must
        hold as many hours as that year (8760, or 8784 in a leap year)."""
        n = len(pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="h", inclusive="left"))
        if len(self.frame) != n:
            raise TraceError(f"{self.source}: line -, field -: {len(self.frame)} hours cannot be laid onto {year}, "
                             f"which has {n}")
        out = self.frame.copy()
        out.index = pd.date_range(f"{year}-01-01 01:00", periods=n, freq="h", name="time_local")
        return out

    def to_inputs_csv(self, path: str | os.PathLike, year: int) -> Path:
        """Write the scenario input file: ``time`` in UTC, ``T_air_C``, ``RH_rel``, ``p_Pa`` (and ``T_dew_C``),
        covering ``year`` in UTC: the typical year is repeated cyclically across its ends."""
        local = self.on_year(year)
        rows_of, time = cyclic_utc_hours(len(local), year, self.utc_offset_h, first_hour=1)
        rows = local.iloc[rows_of]
        out = pd.DataFrame({"time": time})
        for col in ("T_air_C", "T_dew_C"):
            if col in rows:
                out[col] = rows[col].to_numpy()
        out["RH_rel"] = rows["RH_pct"].to_numpy() / 100.0
        out["p_Pa"] = rows["p_Pa"].to_numpy()
        path = Path(path)
        out.to_csv(path, index=False, float_format="%.6g")
        return path


def cyclic_utc_hours(n: int, year: int, utc_offset_h: float, first_hour: int) -> tuple[np.ndarray, list[str]]:
    """Lay ``n`` hourly values of a typical year, value i at local standard time 1 January 00:00 +
    (i + first_hour) h, onto UTC so that ``year`` in UTC is covered: the rows to take (cyclically across the
    year's ends) and their UTC times as ISO strings."""
    pad = int(math.ceil(abs(utc_offset_h))) + 1
    k = np.arange(-pad, n + pad + 1)
    t_utc = (pd.Timestamp(f"{year}-01-01") + pd.to_timedelta(k + first_hour, unit="h")
             - pd.Timedelta(hours=utc_offset_h))
    return k % n, list(t_utc.strftime("%Y-%m-%dT%H:%M:%S"))


def read_weather(path: str | os.PathLike) -> WeatherYear:
    """An EPW file (by its suffix .epw) or a DWD TRY file (.dat, or its columns as .csv)."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: line -, field -: no such file")
    suffix = p.suffix.lower()
    if suffix == ".epw":
        return read_epw(p)
    if suffix in (".dat", ".csv"):
        return read_dwd_try(p)
    raise TraceError(f"{p}: line -, field -: expected an EnergyPlus .epw or a DWD TRY .dat/.csv file, "
                     f"found the suffix {p.suffix!r}")


def _number(src: str, line_no: int, field: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise TraceError(f"{src}: line {line_no}, field {field}: expected a number, found {text.strip()!r}") from None
    if not math.isfinite(v):
        raise TraceError(f"{src}: line {line_no}, field {field}: expected a finite number, found {text.strip()!r}")
    return v


def _check_hours(src: str, months, days, hours, line_nos) -> None:
    """Hour-ending stamps 1..24 in calendar order, no hour twice or missing within a day."""
    for i, (m, d, h) in enumerate(zip(months, days, hours)):
        if not (1 <= m <= 12 and 1 <= d <= 31 and 1 <= h <= 24):
            raise TraceError(f"{src}: line {line_nos[i]}, field month/day/hour: expected month 1..12, day 1..31, "
                             f"hour 1..24, found {m}/{d}/{h}")
    # hours on a leap-year calendar: consecutive rows are one hour apart, or 25 across a 29 February left out
    try:
        day = np.array([(date(2000, m, d) - date(2000, 1, 1)).days for m, d in zip(months, days)])
    except ValueError as e:
        i = next(i for i, (m, d) in enumerate(zip(months, days)) if not _is_date(m, d))
        raise TraceError(f"{src}: line {line_nos[i]}, field month/day: no such date {months[i]}/{days[i]}") from e
    step = np.diff(day * 24 + np.asarray(hours))
    feb29_left_out = (np.asarray(months[:-1]) == 2) & (np.asarray(days[:-1]) == 28) & (step == 25)
    bad = np.flatnonzero((step != 1) & ~feb29_left_out)
    if bad.size:
        i = int(bad[0]) + 1
        what = "out of order or repeated" if step[i - 1] <= 0 else f"{step[i - 1] - 1} hour(s) missing"
        raise TraceError(f"{src}: line {line_nos[i]}, field month/day/hour: {what} ({months[i]}/{days[i]} hour "
                         f"{hours[i]} after {months[i - 1]}/{days[i - 1]} hour {hours[i - 1]})")


def _is_date(m: int, d: int) -> bool:
    try:
        date(2000, m, d)
    except ValueError:
        return False
    return True


def _frame(src: str, columns: dict[str, list[float]], line_nos: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    lo, hi = T_AIR_RANGE_C
    bad = np.flatnonzero(~((frame["T_air_C"] >= lo) & (frame["T_air_C"] <= hi)).to_numpy())
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{src}: line {line_nos[i]}, field T_air: expected {lo:g}..{hi:g} C, found "
                         f"{float(frame['T_air_C'].iloc[i]):g}")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="hour_of_file")   # on_year lays them onto a calendar
    return frame


def read_epw(path: str | os.PathLike) -> WeatherYear:
    src = str(path)
    with open(path, encoding="latin-1") as f:
        lines = f.read().splitlines()
    if not lines or not lines[0].upper().startswith("LOCATION"):
        raise TraceError(f"{src}: line 1, field 1: expected an EPW header starting with LOCATION, found "
                         f"{(lines[0] if lines else '')[:40]!r}")
    loc = lines[0].split(",")
    if len(loc) < 10:
        raise TraceError(f"{src}: line 1, field -: expected 10 LOCATION fields, found {len(loc)}")
    tz = _number(src, 1, "9 (time zone)", loc[8])
    cols: dict[str, list[float]] = {k: [] for k in EPW_FIELDS}
    months, days, hours, line_nos = [], [], [], []
    for n, line in enumerate(lines[EPW_HEADER_LINES:], start=EPW_HEADER_LINES + 1):
        if not line.strip():
            continue
        f = line.split(",")
        if len(f) < 22:
            raise TraceError(f"{src}: line {n}, field -: expected at least 22 fields, found {len(f)}")
        months.append(int(_number(src, n, "2 (month)", f[1])))
        days.append(int(_number(src, n, "3 (day)", f[2])))
        hours.append(int(_number(src, n, "4 (hour)", f[3])))
        for name, (i, missing) in EPW_FIELDS.items():
            v = _number(src, n, f"{i + 1} ({name})", f[i])
            if v >= missing:
                raise TraceError(f"{src}: line {n}, field {i + 1} ({name}): the EPW missing-value code {f[i]!r}")
            cols[name].append(v)
        line_nos.append(n)
    if not line_nos:
        raise TraceError(f"{src}: line {EPW_HEADER_LINES + 1}, field -: no data rows after the header")
    _check_hours(src, months, days, hours, line_nos)
    location = ", ".join(x.strip() for x in loc[1:4] if x.strip())
    return WeatherYear(src, location, tz, _frame(src, cols, line_nos))


def read_dwd_try(path: str | os.PathLike) -> WeatherYear:
    src = str(path)
    with open(path, encoding="latin-1") as f:
        lines = f.read().splitlines()
    if Path(path).suffix.lower() == ".csv":
        header = [h.strip() for h in lines[0].split(",")] if lines else []
        missing = [c for c in TRY_CSV_COLUMNS if c not in header]
        if missing:
            raise TraceError(f"{src}: line 1, field {missing[0]}: missing column (found {header})")
        index = {TRY_CSV_COLUMNS[c]: header.index(c) for c in TRY_CSV_COLUMNS}
        name = {code: col for col, code in TRY_CSV_COLUMNS.items()}       # errors name the file's own columns
        rows = [(n, line.split(",")) for n, line in enumerate(lines[1:], start=2) if line.strip()]
    else:
        try:
            start = next(i for i, line in enumerate(lines) if line.strip() == "***") + 1
        except StopIteration:
            raise TraceError(f"{src}: line -, field -: expected the DWD TRY header to end in a line '***'") from None
        index = {c: TRY_DAT_COLUMNS.index(c) for c in ("MM", "DD", "HH", "t", "p", "RF")}
        name = {c: c for c in index}
        rows = [(n, line.split()) for n, line in enumerate(lines[start:], start=start + 1) if line.strip()]
        for n, f in rows:
            if len(f) != len(TRY_DAT_COLUMNS):
                raise TraceError(f"{src}: line {n}, field -: expected {len(TRY_DAT_COLUMNS)} fields "
                                 f"({' '.join(TRY_DAT_COLUMNS)}), found {len(f)}")
    if not rows:
        raise TraceError(f"{src}: line -, field -: no data rows")
    months, days, hours, line_nos = [], [], [], []
    cols: dict[str, list[float]] = {"T_air_C": [], "RH_pct": [], "p_Pa": []}
    for n, f in rows:
        try:
            get = {k: f[i] for k, i in index.items()}
        except IndexError:
            raise TraceError(f"{src}: line {n}, field -: too few fields ({len(f)})") from None
        months.append(int(_number(src, n, name["MM"], get["MM"])))
        days.append(int(_number(src, n, name["DD"], get["DD"])))
        hours.append(int(_number(src, n, name["HH"], get["HH"])))
        cols["T_air_C"].append(_number(src, n, name["t"], get["t"]))
        cols["RH_pct"].append(_number(src, n, name["RF"], get["RF"]))
        cols["p_Pa"].append(100.0 * _number(src, n, name["p"], get["p"]))
        line_nos.append(n)
    _check_hours(src, months, days, hours, line_nos)
    return WeatherYear(src, Path(src).stem, CET_UTC_OFFSET_H, _frame(src, cols, line_nos))
