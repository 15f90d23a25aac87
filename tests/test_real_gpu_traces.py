"""Real NVML traces of an H200 (tests/data/gpu_h200, recorded with ``twin record``): they load, their energy
closes against the GPU's counter, and the fitted power models match what the workloads did (their event logs)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.cluster.gpu_trace import load_gpu_trace
from twin.cluster.power_fit import (ENERGY_REL_TOL, PERIOD_REL_TOL, PLATEAU_REL_TOL, find_job_span, fit_power)
from twin.errors import CalibrationError
from twin.nvml_recorder import ENERGY_CHECK_TOL_REL, FIELDS

DATA = Path(__file__).parent / "data" / "gpu_h200"
RECORDINGS = ("idle", "burn", "train", "train_fast", "infer", "infer_sequential")
TRUTH_REL_TOL = 0.10          # step period, checkpoint interval and duration, prefill time, request rate
DECODE_REL_TOL = 0.20         # decode time: the same bound as the synthetic recovery tests (test_power_fit.py)
DUTY_ABS_TOL = 0.05


def events(name: str) -> list[dict]:
    return json.loads((DATA / f"{name}_events.json").read_text())["events"]


def times(ev: list[dict], kind: str) -> np.ndarray:
    return np.array([e["t_s"] for e in ev if e["event"] == kind])


def one(ev: list[dict], kind: str) -> dict:
    (e,) = [e for e in ev if e["event"] == kind]
    return e


def rel(a: float, b: float) -> float:
    return abs(a / b - 1.0)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    out = tmp_path_factory.mktemp("fits")
    cache = {}

    def get(trace: str, cls: str):
        if trace not in cache:
            cache[trace] = fit_power(DATA / trace, cls, out / f"{trace}.json", out / f"{trace}.png")
        return cache[trace]

    return get


@pytest.mark.parametrize("name", RECORDINGS)
def test_recordings_are_complete_and_their_energy_closes(name):
    side = json.loads((DATA / f"{name}.json").read_text())
    assert side["status"] == "complete" and side["missed_ticks"] == 0
    gpu = side["gpus"][0]
    assert gpu["name"] == "NVIDIA H200" and gpu["fields"]["power_W"]["source"].endswith("POWER_INSTANT)")
    check = gpu["energy_check"]
    assert abs(check["rel_diff"]["power_W"]) <= ENERGY_CHECK_TOL_REL        # measured: 0.26 % at most
    trace = load_gpu_trace(DATA / f"{name}.parquet")
    (g,) = trace.series
    assert g.P_limit_W == 700.0 and g.t_s.size == side["n_fast_ticks"]
    fields = set(pd.read_parquet(DATA / f"{name}.parquet")["field"].astype(str))
    assert fields <= set(FIELDS) and {"power_W", "energy_J", "temperature_K"} <= fields


def test_idle_shows_no_job_and_the_idle_level_of_the_other_traces(fits):
    g = load_gpu_trace(DATA / "idle.parquet").series[0]
    with pytest.raises(CalibrationError, match="no job"):
        find_job_span(g.t_s, g.P_W)
    P_idle = float(np.median(g.P_W))
    assert 115.0 < P_idle < 125.0
    assert rel(fits("train.parquet", "pretraining").model.P_idle_W, P_idle) <= PLATEAU_REL_TOL


def test_a_matmul_burn_runs_at_the_power_limit(fits):
    r = fits("burn.parquet", "other")
    m, info = r.model, r.gpus[0].fit
    assert r.passed and not info.square_wave and info.high_at_limit
    assert rel(m.P_high_W, 700.0) <= 0.03


@pytest.mark.parametrize("trace", ["train.parquet", "train_fast.parquet", "train_nvidia_smi.csv",
                                   "train_fast_nvidia_smi.csv"])
def test_training_model_matches_the_steps_and_checkpoints_it_ran(fits, trace):
    r = fits(trace, "pretraining")
    assert r.passed                                            # holdout: energy, plateaus, period
    h = r.gpus[0].holdout
    assert h.energy_rel_err <= ENERGY_REL_TOL and h.period_rel_err <= PERIOD_REL_TOL
    m, info = r.model, r.gpus[0].fit
    ev = events(trace.split(".")[0].replace("_nvidia_smi", ""))
    compute, exchange = times(ev, "compute_start"), times(ev, "exchange_start")
    step = np.diff(compute)
    period = float(np.median(step))                            # 1.59 s and 0.92 s
    duty = float(np.median((exchange[:step.size] - compute[:step.size]) / step))
    ckpt_start, ckpt_end = times(ev, "ckpt_start"), times(ev, "ckpt_end")
    assert info.n_dips == ckpt_start.size == 2
    assert rel(m.period_s, period) <= TRUTH_REL_TOL            # measured: 2.1 % and 1.9 %
    assert abs(m.duty - duty) <= DUTY_ABS_TOL                  # measured: 0.019 and 0.030
    training_between = np.r_[ckpt_start[0] - compute[0], ckpt_start[1:] - ckpt_end[:-1]]
    assert rel(m.ckpt_interval_s, float(np.median(training_between))) <= TRUTH_REL_TOL
    assert rel(m.ckpt_duration_s, float(np.median(ckpt_end - ckpt_start))) <= TRUTH_REL_TOL
    assert m.P_high_W > 650.0 and m.P_low_W < 140.0 and m.P_ckpt_W < 140.0


@pytest.mark.parametrize("name", ["train", "train_fast"])
def test_nvidia_smi_and_nvml_give_the_same_model(fits, name):
    a = fits(f"{name}.parquet", "pretraining").model
    b = fits(f"{name}_nvidia_smi.csv", "pretraining").model
    for field in ("P_idle_W", "P_high_W", "P_low_W", "period_s", "ckpt_interval_s"):
        assert rel(getattr(b, field), getattr(a, field)) <= 0.01, field


@pytest.mark.parametrize("name", ["infer", "infer_sequential"])
def test_inference_model_matches_the_requests_it_served(fits, name):
    r = fits(f"{name}.parquet", "online_inference")
    assert r.passed and r.gpus[0].in_sample.energy_rel_err <= ENERGY_REL_TOL
    h = r.gpus[0].holdout
    assert h is not None and h.passed and h.E_given_requests_J is not None
    m = r.model
    ev = events(name)
    arrivals = one(ev, "arrivals")["t_s"]
    pre = {e["request"]: e["t_s"] for e in ev if e["event"] == "prefill_start"}
    pre_end = {e["request"]: e["t_s"] for e in ev if e["event"] == "prefill_end"}
    dec_end = {e["request"]: e["t_s"] for e in ev if e["event"] == "decode_end"}
    assert rel(m.prefill_s, np.mean([pre_end[k] - pre[k] for k in pre_end])) <= TRUTH_REL_TOL   # 1.3 %, 1.7 %
    info = r.gpus[0].fit                                      # the rate over the job the fit found
    a = np.asarray(arrivals)
    n = np.count_nonzero((a >= info.t_job_start_s - 0.1) & (a < info.t_job_stop_s))
    assert rel(m.rate_per_s, n / (info.t_job_stop_s - info.t_job_start_s)) <= TRUTH_REL_TOL
    assert 700.0 < m.P_prefill_W < 760.0 and 480.0 < m.P_decode_W < 570.0 and m.P_wait_W < 135.0
    if name == "infer":    # a continuous batch: the M/G/inf server the model assumes
        assert rel(m.decode_s, np.mean([dec_end[k] - pre_end[k] for k in dec_end])) <= DECODE_REL_TOL  # 9.0 %
