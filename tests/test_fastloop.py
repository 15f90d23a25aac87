"""The engine's C loop (twin/csrc/steploop.c) is a faster path for the same computation: whole runs on it are
bit-identical to the Python loop (blocks of twin/blocks.py, FMUs through the adapter's steppers)."""
from __future__ import annotations

import dataclasses
import json
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin import fastloop, runner, scenario
from twin.engine import Engine

from test_engine import make_site

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _use_loop(monkeypatch, loop: str) -> None:
    if loop == "python":
        monkeypatch.setenv("TWIN_PYTHON_LOOP", "1")
    else:
        monkeypatch.delenv("TWIN_PYTHON_LOOP", raising=False)


def _both(sc, tmp_path, monkeypatch, **kw):
    out = {}
    for loop in ("python", "c"):
        _use_loop(monkeypatch, loop)
        runner.run_scenario(sc, tmp_path / loop, progress=False, report=False, **kw)
        out[loop] = pd.read_parquet(tmp_path / loop / "timeseries.parquet")
    return out


def test_small_site_is_bit_identical_on_both_loops(tmp_path, monkeypatch, fmu_path):
    sc = scenario.load(make_site(tmp_path / "site"))
    runs = _both(sc, tmp_path, monkeypatch)
    assert runs["python"].shape == runs["c"].shape
    assert np.array_equal(runs["python"].to_numpy(), runs["c"].to_numpy())


def test_reference_site_is_bit_identical_on_both_loops(tmp_path, monkeypatch):
    sc = scenario.load(SCENARIOS / "reference_year.toml")
    sc = dataclasses.replace(sc, run=dataclasses.replace(sc.run, start=dt.datetime(2023, 3, 1), duration_s=86400))
    engine = Engine(sc)
    try:
        assert fastloop.supported(engine.site), "the reference site must run on the C loop"
    finally:
        engine.site.close()
    runs = _both(sc, tmp_path, monkeypatch, checkpoint_every_s=6 * 3600)
    assert np.array_equal(runs["python"].to_numpy(), runs["c"].to_numpy())


def test_checkpoint_from_the_c_loop_resumes_bit_identically(tmp_path, fmu_path):
    site = make_site(tmp_path / "site")
    runner.run(site, tmp_path / "full", progress=False, report=False, checkpoint_every_s=12 * 3600)
    ckpt = sorted((tmp_path / "full" / "checkpoints").glob("*.ckpt"))[1]
    runner.resume(ckpt, tmp_path / "resumed", progress=False, report=False)
    a = pd.read_parquet(tmp_path / "full" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "resumed" / "timeseries.parquet")
    assert np.array_equal(a.to_numpy(), b.to_numpy())


def test_an_fmu_error_in_the_c_loop_names_fmu_function_time_and_variable(tmp_path, fmu_path):
    # a coolant supply of 150 C from hour 30 (the input file's fault) reaches RackLoop, which refuses it
    site = make_site(tmp_path / "site")
    load = pd.read_csv(site.parent / "inputs" / "load.csv")
    load.loc[30:, "T_supply_C"] = 150.0
    load.to_csv(site.parent / "inputs" / "load.csv", index=False)
    from twin.errors import FmuError

    with pytest.raises(FmuError, match=r"racks \(RackLoop.fmu\): fmi2SetReal returned error at t = \d+ s.*T_in_K"):
        runner.run(site, tmp_path / "run", progress=False, report=False)


def test_a_failed_run_keeps_the_same_rows_on_both_loops_and_says_failed(tmp_path, monkeypatch, fmu_path):
    from twin.errors import FmuError

    site = make_site(tmp_path / "site")
    load = pd.read_csv(site.parent / "inputs" / "load.csv")
    load.loc[30:, "T_supply_C"] = 150.0
    load.to_csv(site.parent / "inputs" / "load.csv", index=False)
    rows = {}
    for loop in ("python", "c"):
        _use_loop(monkeypatch, loop)
        with pytest.raises(FmuError):
            runner.run(site, tmp_path / loop, progress=False, report=False)
        rows[loop] = pd.read_parquet(tmp_path / loop / "timeseries.parquet")
        info = json.loads((tmp_path / loop / "run.json").read_text())
        assert info["status"] == "failed" and "T_in_K" in info["error"]
    assert len(rows["c"]) == len(rows["python"]) > 1000
    assert np.array_equal(rows["c"].to_numpy(), rows["python"].to_numpy())
