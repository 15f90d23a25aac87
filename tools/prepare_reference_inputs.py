"""Prepare the input files of scenarios/reference_year from the project's shared data folder.

Run once by a developer (python3 tools/prepare_reference_inputs.py); the outputs are committed with their
attribution in scenarios/reference_year/inputs/SOURCES.md, so the shipped scenario needs nothing else.

- weather.csv: DWD TRY2010 region 11 (Fichtelberg, cold: Tmean 3.8 C), hourly air temperature, mapped onto
  2023 (hour_of_year 1 = 2023-01-01 00:00 UTC: the TRY hour-ending CET stamps shifted by the one hour between
  hour-ending and hour-starting, which equals the CET-UTC offset), plus the ground temperature at 1 m depth
  from the Kusuda-Achenbach model fitted to the year's air temperature (soil diffusivity 0.05 m2/day).
- heat_demand.csv: hourly mean demand of three consumers (read with interpolate = "previous"): homes (a block
  of flats: BDEW profile MFH, building class 11, hot water included) and a school (BDEW GKO, public buildings,
  the summer holidays as Sundays), both by twin.heat_demand (demandlib) on the CET calendar; an indoor pool,
  for which BDEW has no type: hall heating by degree-hours against a 15 C heating limit plus water heating all
  day. Annual totals are parameters below.
- grid.csv: 2023 DE-LU day-ahead price (ENTSO-E; the file's regular hourly stamps read as CET = UTC+1) and grid carbon intensity
  (Electricity Maps, LCA, UTC).
- it_load.csv: the IT power of a 200 kW liquid-cooled GPU pod until the cluster simulator drives it: a seeded
  synthetic hourly profile (mean 82 % of nameplate, training jobs near full power, a diurnal inference swing,
  short idle gaps).
Every file gets one extra row at 2024-01-01 00:00 (a copy of the first) so the series cover the whole year.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "scenarios" / "reference_year" / "inputs"
YEAR_START = pd.Timestamp("2023-01-01 00:00:00")
HOURS = 8760

HOMES_MWH = 650.0       # a block of ~60 flats
POOL_MWH = 420.0        # an indoor pool: water and hall heating all year
SCHOOL_MWH = 330.0      # a school: weekdays, closed in the summer holidays
T_HEAT_LIMIT_C = 15.0


def _times(n: int) -> pd.DatetimeIndex:
    return YEAR_START + pd.to_timedelta(np.arange(n), unit="h")


def _wrap(df: pd.DataFrame) -> pd.DataFrame:
    """Append a row at the end of the year equal to the first, so the series covers [0, 8760 h]."""
    last = df.iloc[[0]].copy()
    last["time"] = (YEAR_START + pd.Timedelta(hours=HOURS)).strftime("%Y-%m-%dT%H:%M:%S")
    return pd.concat([df, last], ignore_index=True)


def weather() -> pd.DataFrame:
    w = pd.read_csv(DATA / "weather_dwd_try2010" / "TRY2010_11_Fichtelberg.csv")
    T = w["T_air_degC"].to_numpy(float)
    t_day = np.arange(HOURS) / 24.0
    # Kusuda-Achenbach: T(z, t) = Tm - As exp(-z sqrt(pi/(365 a))) cos(2 pi/365 (t - t0 - z/2 sqrt(365/(pi a))))
    daily = T.reshape(365, 24).mean(axis=1)
    days = np.arange(365)
    A = np.column_stack([np.ones(365), np.cos(2 * np.pi * days / 365), np.sin(2 * np.pi * days / 365)])
    c = np.linalg.lstsq(A, daily, rcond=None)[0]
    Tm, amp, phase = c[0], np.hypot(c[1], c[2]), np.arctan2(c[2], c[1])
    z, a = 1.0, 0.05
    damp = np.exp(-z * np.sqrt(np.pi / (365 * a)))
    lag = z / 2 * np.sqrt(365 / (np.pi * a))
    T_ground = Tm + amp * damp * np.cos(2 * np.pi * (t_day - lag) / 365 - phase)
    return _wrap(pd.DataFrame({"time": _times(HOURS).strftime("%Y-%m-%dT%H:%M:%S"),
                               "T_air_C": T, "T_ground_C": np.round(T_ground, 3)}))


def heat_demand(T_air: np.ndarray) -> pd.DataFrame:
    """Homes and school: BDEW standard load profiles (twin.heat_demand, demandlib) on the local (CET) calendar;
    the pool, for which BDEW has no type: its own profile (hall heating by degree-hours, water heating all day)."""
    from twin.heat_demand import Consumer, bdew_profile_kW

    local = pd.date_range("2023-01-01 00:00", periods=HOURS, freq="h")       # CET hour starts
    # TRY row k is the reading at CET k+1 o'clock, the end of local hour k
    T_local = pd.Series(T_air[:HOURS], index=local)
    summer = {d.date(): "summer holidays" for d in pd.date_range("2023-07-01", "2023-08-31", freq="D")}
    homes_local = bdew_profile_kW(Consumer("homes", "MFH", HOMES_MWH * 1000), T_local).to_numpy()
    school_local = bdew_profile_kW(Consumer("school", "GKO", SCHOOL_MWH * 1000), T_local, holidays=summer).to_numpy()
    # UTC hour k is CET hour k+1 (the year wraps around)
    homes, school = np.roll(homes_local, -1), np.roll(school_local, -1)
    times = _times(HOURS)
    hour = times.hour.to_numpy(float)
    T_day = pd.Series(T_air[:HOURS]).rolling(24, min_periods=1).mean().to_numpy()  # buildings respond to a day's mean
    dh = np.maximum(T_HEAT_LIMIT_C - T_day, 0.0)
    pool_water = np.where((hour >= 6) & (hour <= 22), 1.0, 0.4)
    pool = (0.35 * dh / dh.sum() + 0.65 * pool_water / pool_water.sum()) * POOL_MWH * 1000
    kW = {"Q_homes_kW": homes, "Q_pool_kW": pool, "Q_school_kW": school}
    df = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M:%S")} | {k: np.round(v, 3) for k, v in kW.items()})
    return _wrap(df)


def grid() -> pd.DataFrame:
    price = pd.read_csv(DATA / "grid_price_carbon_DE" / "DE-LU_day_ahead_price_EUR_MWh_2023.csv")
    # The file is a regular hourly grid (its DST hours are filled, not skipped or repeated): its stamps are read
    # as CET, UTC+1, all year.
    utc = pd.to_datetime(price["Datetime"]) - pd.Timedelta(hours=1)
    p = pd.Series(price["Price (EUR/MWh)"].to_numpy(float), index=utc)
    p = p[~p.index.duplicated()].reindex(_times(HOURS)).interpolate(limit_direction="both")
    ci = pd.read_csv(DATA / "grid_price_carbon_DE" / "DE_carbon_intensity_hourly_2023.csv")
    c = pd.Series(ci["Carbon Intensity gCO₂eq/kWh (LCA)"].to_numpy(float), index=pd.to_datetime(ci["Datetime (UTC)"]))
    c = c[~c.index.duplicated()].reindex(_times(HOURS)).interpolate(limit_direction="both")
    return _wrap(pd.DataFrame({"time": _times(HOURS).strftime("%Y-%m-%dT%H:%M:%S"),
                               "price_EUR_MWh": p.to_numpy(), "carbon_g_kWh": c.to_numpy()}))


def it_load(seed: int = 2023) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = _times(HOURS)
    hour = times.hour.to_numpy(float)
    nameplate_kW = 200.0
    training = 0.62 + 0.05 * rng.standard_normal(HOURS).cumsum() / np.sqrt(np.arange(1, HOURS + 1))
    inference = 0.14 + 0.06 * np.sin(2 * np.pi * (hour - 9) / 24)
    idle_gap = rng.uniform(size=HOURS) < 0.03
    frac = np.clip(training + inference, 0.25, 0.98)
    frac[idle_gap] = 0.3
    return _wrap(pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M:%S"), "P_IT_kW": np.round(frac * nameplate_kW, 3)}))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    w = weather()
    w.to_csv(OUT / "weather.csv", index=False)
    heat_demand(w["T_air_C"].to_numpy()).to_csv(OUT / "heat_demand.csv", index=False)
    grid().to_csv(OUT / "grid.csv", index=False)
    it_load().to_csv(OUT / "it_load.csv", index=False)
    for f in sorted(OUT.glob("*.csv")):
        print(f.relative_to(ROOT), f.stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
