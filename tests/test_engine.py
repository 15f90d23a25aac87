"""The engine on a small site (racks, a PI-controlled flow, thermal throttling, an input series):
determinism, checkpoint restore, Ctrl-C, the energy balance, the run folder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin import runner
from twin.blocks import Throttle

BALANCE_RTOL = 1e-3   # the 0.1 %; this site closes far better

SMALL = """
[run]
name = "small"
start = 2023-01-01T00:00:00
duration = "2d"
step_s = 60
seed = 1
chunk_rows = 500

[inputs.site]
file = "inputs/load.csv"

[components.throttle]
block = "Throttle"
inputs = { P_demand_W = "inputs.site.P_IT_W", T_coolant_K = { from = "racks.T_out_K", initial = 313.15 } }

[components.ctl]
block = "PI"
parameters = { kp = 0.2, ti_s = 600, direction = -1, u_min = 0.5, u_max = 5, u_start = 2, u0 = 2 }
inputs = { measured = { from = "racks.T_out_K", initial = 313.15 }, setpoint = 318.15 }

[components.racks]
fmu = "RackLoop"
parameters = { f_liquid = 0.75 }
inputs = { P_IT_W = "throttle.P_W", mdot_kg_s = "ctl.u", T_in_K = "inputs.site.T_supply_K" }

[kpis]
E_IT_J = "racks.E_IT_J"
E_air_heat_J = "racks.E_air_J"
E_reused_J = "racks.E_coolant_J"

[balance]
sources = ["racks.E_IT_J"]
sinks = ["racks.E_air_J", "racks.E_coolant_J"]
stored = ["racks.E_stored_J"]
"""


def make_site(folder: Path, text: str = SMALL) -> Path:
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    t = pd.date_range("2023-01-01", periods=24 * 3 + 1, freq="h")
    hours = np.arange(len(t))
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M:%S"),
                  "P_IT_kW": 150 + 50 * np.sin(hours / 24 * 2 * np.pi),
                  "T_supply_C": 35 + 8 * (hours % 24 > 12)}).to_csv(folder / "inputs" / "load.csv", index=False)
    path = folder / "small.toml"
    path.write_text(text)
    return path


@pytest.fixture
def site(tmp_path, fmu_path):
    fmu_path("RackLoop")
    return make_site(tmp_path / "site")


def test_run_folder_has_every_output_and_the_balance_closes(site, tmp_path):
    out = tmp_path / "run"
    result = runner.run(site, out, progress=False)
    assert not result.interrupted and result.steps_done == 2 * 1440
    for f in ("timeseries.parquet", "kpis.json", "scenario.toml", "run.json", "events.parquet", "report.html",
              "monthly_energy.png"):
        assert (out / f).is_file(), f
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 2 * 1440 + 1
    assert np.array_equal(ts["time_s"].to_numpy(), np.arange(len(ts)) * 60.0)
    k = json.loads((out / "kpis.json").read_text())
    assert abs(k["energy_balance"]["residual_rel"]) < BALANCE_RTOL
    # the input series arrive in SI: 35 C -> 308.15 K
    assert ts["inputs.site.T_supply_K"].min() == pytest.approx(308.15)
    info = json.loads((out / "run.json").read_text())
    assert info["seed"] == 1 and info["status"] == "complete"
    assert len(info["fmus"]["racks"]["sha256"]) == 64 and info["versions"]["fmpy"]


def test_thermal_feedback_throttles_when_the_coolant_is_too_warm(site, tmp_path):
    out = tmp_path / "run"
    runner.run(site, out, progress=False, report=False)
    ts = pd.read_parquet(out / "timeseries.parquet")
    hot = ts["racks.T_out_K"].shift(1) > Throttle.PARAMS[0].default + 0.5
    assert hot.any(), "the test site must get warm enough to throttle"
    assert (ts.loc[hot, "throttle.P_throttled_W"] > 0).all()
    assert (ts.loc[~hot & (ts["racks.T_out_K"].shift(1) < 318.0), "throttle.P_throttled_W"] == 0).all()


def test_same_scenario_same_outputs(site, tmp_path):
    runner.run(site, tmp_path / "a", progress=False, report=False)
    runner.run(site, tmp_path / "b", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "a" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "b" / "timeseries.parquet")
    assert a.equals(b)


def test_checkpoint_restore_continues_bit_identically(site, tmp_path):
    runner.run(site, tmp_path / "full", progress=False, report=False, checkpoint_every_s=12 * 3600)
    ckpts = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 3  # at 12 h, 24 h, 36 h
    runner.resume(ckpts[1], tmp_path / "resumed", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "full" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "timeseries.parquet")
    assert a.shape == b.shape
    assert np.array_equal(a.to_numpy(), b.to_numpy())


def test_ctrl_c_leaves_a_readable_parquet_and_says_so(site, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TWIN_PYTHON_LOOP", "1")   # the Python loop: the interrupt lands inside a step
    calls = {"n": 0}
    original = Throttle.step

    def interrupted_step(self, t_s, h_s, u):
        calls["n"] += 1
        if calls["n"] == 1234:
            raise KeyboardInterrupt
        return original(self, t_s, h_s, u)

    monkeypatch.setattr(Throttle, "step", interrupted_step)
    result = runner.run(site, tmp_path / "run", progress=False, report=False)
    assert result.interrupted and result.steps_done == 1233
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    assert len(ts) == 1234 and ts["time_s"].iloc[-1] == 1233 * 60.0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"
    assert "interrupted at t = 73980 s" in capsys.readouterr().err


def test_ctrl_c_on_the_c_loop_leaves_a_readable_parquet(site, tmp_path, monkeypatch):
    from twin import fastloop

    calls = {"n": 0}
    original = fastloop.FastLoop.run

    def interrupted_run(self, *args):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(fastloop.FastLoop, "run", interrupted_run)
    result = runner.run(site, tmp_path / "run", progress=False, report=False)
    assert result.interrupted and result.steps_done == 6 * 60   # six calls of one simulated hour each
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    assert len(ts) == 6 * 60 + 1 and ts["time_s"].iloc[-1] == 6 * 3600.0


def test_cli_run_and_validate(site, tmp_path):
    out = tmp_path / "cli-run"
    r = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(site), "--out", str(out), "--quiet", "--no-report"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "kpis.json").is_file()
    r = subprocess.run([sys.executable, "-m", "twin.cli", "validate", str(site)], capture_output=True, text=True)
    assert r.returncode == 0 and "valid" in r.stdout


def test_twin_record_without_a_gpu_exits_2_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "twin.cli", "record", "--duration", "1", "--out", str(tmp_path / "t.parquet")],
                       capture_output=True, text=True)
    if r.returncode == 0:
        pytest.skip("this machine has an NVIDIA GPU and driver: the no-GPU path is not reachable here")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "NVML" in r.stderr
    assert not (tmp_path / "t.parquet").exists()


def test_resume_keeps_a_changed_run_and_works_from_another_directory(site, tmp_path, monkeypatch):
    import dataclasses
    import datetime as dt

    from twin import scenario

    sc = scenario.load(site)
    sc = dataclasses.replace(sc, run=dataclasses.replace(sc.run, start=dt.datetime(2023, 1, 2), duration_s=6 * 3600))
    runner.run_scenario(sc, tmp_path / "full", progress=False, report=False, checkpoint_every_s=3600)
    ckpt = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))[2]
    monkeypatch.chdir(tmp_path)                      # elsewhere than where the scenario was loaded from
    runner.resume(ckpt, tmp_path / "resumed", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "full" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "timeseries.parquet")
    assert len(a) == 6 * 60 + 1 and np.array_equal(a.to_numpy(), b.to_numpy())
    assert json.loads((tmp_path / "resumed" / "run.json").read_text())["start"] == "2023-01-02T00:00:00"


def test_resume_refuses_changed_inputs(site, tmp_path):
    from twin.errors import TwinError

    runner.run(site, tmp_path / "full", progress=False, report=False, checkpoint_every_s=12 * 3600)
    ckpt = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))[0]
    load = site.parent / "inputs" / "load.csv"
    load.write_text(load.read_text().replace("150.0", "151.0", 1))
    with pytest.raises(TwinError, match="input files of site changed"):
        runner.resume(ckpt, tmp_path / "resumed", progress=False, report=False)
