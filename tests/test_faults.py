"""Faults as SimPy events: a pump trip in the reference plant, replayed from checkpoints bit-identically, and
the problems of a [[faults]] table reported with their paths."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin import runner, scenario
from twin.errors import ScenarioError

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
TRIP = """
[[faults]]
at = "12h"
until = "14h"
component = "rack_pump"
port = "trip"
value = 1
description = "rack pump trip"
"""


def _site(tmp_path, faults: str) -> Path:
    """The reference plant for one day of March, with faults appended (the scenario copied beside its inputs)."""
    text = (SCENARIOS / "reference_year.toml").read_text()
    text = text.replace("start = 2023-01-01T00:00:00", "start = 2023-03-01T00:00:00").replace('duration = "365d"', 'duration = "1d"')
    path = SCENARIOS / f"_tmp_faults_{tmp_path.name}.toml"
    path.write_text(text + faults)
    return path


@pytest.fixture
def tripped(tmp_path):
    path = _site(tmp_path, TRIP)
    yield path
    path.unlink()


def test_a_pump_trip_acts_from_its_time_and_is_logged(tripped, tmp_path):
    runner.run(tripped, tmp_path / "run", progress=False, report=False, checkpoint_every_s=3 * 3600)
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet").set_index("time_s")
    flow = ts["rack_pump.mdot_kg_s"]
    assert flow.loc[12 * 3600] > 1.0                      # the step ending at the fault's time still ran normally
    assert flow.loc[12 * 3600 + 300] < 1e-3               # coasted down within minutes
    assert ts["racks.T_out_K"].loc[13.5 * 3600] > ts["racks.T_out_K"].loc[11.5 * 3600] + 10.0
    assert ts["throttle.P_throttled_W"].loc[12.5 * 3600:14 * 3600].max() > 0  # the hot coolant throttles the GPUs
    assert flow.loc[15 * 3600] > 1.0                      # back after the trip is reset
    events = pd.read_parquet(tmp_path / "run" / "events.parquet")
    faults = events[events.kind.str.startswith("fault")]
    assert faults[["time_s", "kind", "source"]].values.tolist() == [[43200.0, "fault", "rack_pump"],
                                                                   [50400.0, "fault_end", "rack_pump"]]
    alarms = events[events.kind == "alarm"]
    assert set(zip(alarms.source, alarms.detail)) == {("rack_pump", "tripped"), ("racks", "overtemp")}
    assert alarms.time_s.min() > 43200.0 and (events.kind == "alarm_end").sum() == 2


@pytest.mark.parametrize("checkpoint", [0, 3])   # before the fault (at 3 h) and during it (at 12 h)
def test_a_run_with_faults_resumes_bit_identically(tripped, tmp_path, checkpoint):
    runner.run(tripped, tmp_path / "full", progress=False, report=False, checkpoint_every_s=3 * 3600)
    ckpt = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))[checkpoint]
    runner.resume(ckpt, tmp_path / "resumed", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "full" / "timeseries.parquet").to_numpy()
    b = pd.read_parquet(tmp_path / "resumed" / "timeseries.parquet").to_numpy()
    assert np.array_equal(a, b)
    ea = pd.read_parquet(tmp_path / "full" / "events.parquet")
    eb = pd.read_parquet(tmp_path / "resumed" / "events.parquet")
    assert ea.equals(eb)


def test_fault_table_problems_are_listed(tmp_path):
    bad = """
[[faults]]
at = "30h"
component = "rack_pump"
port = "speed_cmd_rel"
value = 0.5

[[faults]]
at = "2h"
component = "tank"
port = "V_m3"
value = 1.0

[[faults]]
at = "2h"
component = "rack_pumpp"
port = "trip"
value = 1
"""
    path = _site(tmp_path, bad)
    try:
        with pytest.raises(ScenarioError) as e:
            scenario.load(path)
    finally:
        path.unlink()
    msg = str(e.value)
    assert "faults[0].at: expected a time within the run (0 .. 86400 s), found '30h'" in msg
    assert "faults[0].port: expected an input no connection feeds" in msg
    assert "faults[1].port: expected an input or a tunable parameter (V_m3 is fixed after initialization)" in msg
    assert "faults[2].component: expected an FMU component of the scenario, found 'rack_pumpp' (did you mean 'rack_pump'?)" in msg
