"""The shipped scenarios: every one validates; the reference year runs (two short windows of it here, the whole
year in `twin bench`), its energy balance closes and the plant behaves as designed in winter and summer."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from twin import runner, scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BALANCE_RTOL = 1e-3     # the 0.1 % of the IT electricity


@pytest.mark.parametrize("path", sorted(p for p in SCENARIOS.glob("*.toml") if not p.name.startswith("_")),
                         ids=lambda p: p.name)
def test_every_shipped_scenario_validates(path):
    sc = scenario.load(path)
    assert sc.components and sc.run.n_steps > 0


def _window(start: dt.datetime, days: int) -> scenario.Scenario:
    sc = scenario.load(SCENARIOS / "reference_year.toml")
    return dataclasses.replace(sc, run=dataclasses.replace(sc.run, start=start, duration_s=days * 86400))


@pytest.fixture(scope="module")
def winter(tmp_path_factory):
    out = tmp_path_factory.mktemp("winter")
    runner.run_scenario(_window(dt.datetime(2023, 1, 9), 3), out, progress=False, report=False)
    return out


@pytest.fixture(scope="module")
def summer(tmp_path_factory):
    out = tmp_path_factory.mktemp("summer")
    runner.run_scenario(_window(dt.datetime(2023, 7, 10), 3), out, progress=False, report=False)
    return out


@pytest.mark.parametrize("season", ["winter", "summer"])
def test_energy_balance_closes(season, request):
    k = json.loads((request.getfixturevalue(season) / "kpis.json").read_text())
    assert abs(k["energy_balance"]["residual_rel"]) < BALANCE_RTOL


def test_winter_the_heat_pump_takes_the_heat_and_the_boiler_tops_up(winter):
    t = json.loads((winter / "kpis.json").read_text())["total"]
    assert t["heat_recovery_ratio"] > 0.6            # most of the IT heat reaches DH through the heat pump
    assert t["drycooler_heat_MWh"] < 0.02 * t["E_IT_MWh"]
    assert t["boiler_heat_MWh"] > 0.0 and t["unmet_demand_MWh"] < 0.01 * t["heat_delivered_MWh"]
    assert t["throttled_IT_MWh"] == 0.0


def test_summer_the_dry_cooler_takes_what_dh_cannot(summer):
    t = json.loads((summer / "kpis.json").read_text())["total"]
    assert t["drycooler_heat_MWh"] > 0.05 * t["E_IT_MWh"]
    assert t["boiler_heat_MWh"] < 0.05 * t["heat_delivered_MWh"]
    ts = pd.read_parquet(summer / "timeseries.parquet", columns=["drycooler.T_out_K", "racks.T_out_K"])
    assert ts["drycooler.T_out_K"].max() < 313.15   # the rack supply stays below the throttling limit (40 C)


def test_kpis_are_labelled_with_the_window_run(winter):
    k = json.loads((winter / "kpis.json").read_text())
    assert list(k["monthly"]) == ["2023-01"]


def test_the_cluster_scenario_runs_two_days_and_its_balance_closes(tmp_path):
    sc = scenario.load(SCENARIOS / "reference_cluster.toml")
    sc = dataclasses.replace(sc, run=dataclasses.replace(sc.run, duration_s=2 * 86400))
    runner.run_scenario(sc, tmp_path / "run", progress=False, report=False)
    k = json.loads((tmp_path / "run" / "kpis.json").read_text())
    assert abs(k["energy_balance"]["residual_rel"]) < BALANCE_RTOL
    assert k["jobs"]["n_started"] > 50 and k["total"]["E_IT_MWh"] > 0
    events = pd.read_parquet(tmp_path / "run" / "events.parquet")
    assert {"submit", "start", "end"} <= set(events["kind"])
