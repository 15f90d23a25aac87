"""Hourly heat demand of district-heating consumers from the outdoor temperature: the BDEW standard load profiles.

The German gas and district-heating standard load profiles (BDEW/VKU/GEODE "Leitfaden Abwicklung von
Standardlastprofilen Gas": the SigLinDe sigmoid of the four-day weighted mean temperature for the daily
demand, hour factors per temperature class and weekday, weekday factors), as implemented by demandlib
(oemof; this is the module of twin that imports it). Consumer types: ``EFH`` (single-family houses), ``MFH``
(blocks of flats), both with a building class 1..11 (age and insulation; 11 is the mean of the stock);
commercial types (``GHD`` all trades, ``GKO`` offices, ``GHA`` retail, ``GBH`` accommodation, ``GGA``
restaurants, ``GBD`` other services, ``GMK`` metal and cars, ``GBA`` bakeries, ``GWA`` laundries, ``GGB``
horticulture, ``GPD`` paper and print, ``GMF`` households-like trades) take class 0. Domestic hot water is
included unless ``hot_water=False``.

The profile is scaled so that the year holds ``annual_kWh`` (to the precision of the method: the daily
factors are normalised over the year's weighted temperatures, the hour factors per day). Times are the
starts of the hours in the consumers' local standard time; each value is the mean power over its hour, so
in a scenario the file is read with ``interpolate = "previous"`` (hold), which keeps each hour's energy.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TwinError
from .weather import WeatherYear, cyclic_utc_hours

RESIDENTIAL = ("EFH", "MFH")
COMMERCIAL = ("GHD", "GKO", "GHA", "GBH", "GGA", "GBD", "GMK", "GBA", "GWA", "GGB", "GPD", "GMF")
DEFAULT_BUILDING_CLASS = 11


@dataclass(frozen=True)
class Consumer:
    """One consumer (or a group of alike ones) of a DH loop."""

    name: str
    profile: str                 # a BDEW type: RESIDENTIAL or COMMERCIAL
    annual_kWh: float
    building_class: int | None = None    # 1..11 for EFH/MFH (default 11), 0 for commercial types
    windy: bool = False
    hot_water: bool = True

    def __post_init__(self):
        kind = self.profile.upper()
        if kind not in RESIDENTIAL + COMMERCIAL:
            raise TwinError(f"consumer {self.name!r}: profile {self.profile!r} is not a BDEW type; expected one of "
                            f"{', '.join(RESIDENTIAL + COMMERCIAL)}")
        if not (np.isfinite(self.annual_kWh) and self.annual_kWh > 0):
            raise TwinError(f"consumer {self.name!r}: annual_kWh must be a number > 0, found {self.annual_kWh!r}")
        cls = self.building_class
        if kind in RESIDENTIAL and cls is not None and not (isinstance(cls, int) and 1 <= cls <= 11):
            raise TwinError(f"consumer {self.name!r}: building_class of {kind} must be 1..11, found {cls!r}")
        if kind in COMMERCIAL and cls not in (None, 0):
            raise TwinError(f"consumer {self.name!r}: building_class of the commercial type {kind} must be 0, "
                            f"found {cls!r}")


def bdew_profile_kW(consumer: Consumer, T_air_C: pd.Series, holidays: dict | None = None) -> pd.Series:
    """The consumer's hourly heat demand (kW, mean over each hour) for hourly outdoor temperatures indexed by
    the start of each hour in local standard time (a whole year)."""
    from demandlib import bdew

    idx = T_air_C.index
    if not isinstance(idx, pd.DatetimeIndex) or len(idx) < 2 or not (idx[1:] - idx[:-1] == pd.Timedelta(hours=1)).all():
        raise TwinError(f"consumer {consumer.name!r}: the temperatures must be hourly, indexed by time")
    if not np.isfinite(T_air_C.to_numpy(dtype=float)).all():
        raise TwinError(f"consumer {consumer.name!r}: the temperatures hold non-finite values")
    kind = consumer.profile.upper()
    cls = consumer.building_class if consumer.building_class is not None else (
        DEFAULT_BUILDING_CLASS if kind in RESIDENTIAL else 0)
    with warnings.catch_warnings():   # demandlib 0.2.2 uses pandas API deprecated in pandas 3.1 (inplace, weekday)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        building = bdew.HeatBuilding(idx, holidays=holidays or {}, temperature=T_air_C.astype(float),
                                     shlp_type=kind, building_class=cls, wind_class=int(consumer.windy),
                                     annual_heat_demand=float(consumer.annual_kWh), name=consumer.name,
                                     ww_incl=consumer.hot_water)
        profile = building.get_bdew_profile()
    return profile.astype(float).rename(consumer.name)


def demand_inputs_csv(path: str | os.PathLike, weather: WeatherYear, year: int, consumers: list[Consumer],
                      holidays: dict | None = None) -> Path:
    """Write a scenario input file ``time`` (UTC, the start of each hour), ``Q_<name>_kW`` per consumer, for
    ``year`` in the weather's local standard time; the weather's readings at the ends of the hours give each
    hour's temperature. The profile is repeated cyclically across the year's ends so that the whole UTC year
    is covered."""
    if not consumers:
        raise TwinError("demand: no consumers given")
    names = [c.name for c in consumers]
    if len(set(names)) != len(names):
        raise TwinError(f"demand: consumer names must be distinct, found {names}")
    readings = weather.on_year(year)
    T = pd.Series(readings["T_air_C"].to_numpy(), index=readings.index - pd.Timedelta(hours=1))   # hour starts
    rows, time = cyclic_utc_hours(len(T), year, weather.utc_offset_h, first_hour=0)
    out = pd.DataFrame({"time": time})
    for c in consumers:
        out[f"Q_{c.name}_kW"] = bdew_profile_kW(c, T, holidays).to_numpy()[rows]
    path = Path(path)
    out.to_csv(path, index=False, float_format="%.6g")
    return path
