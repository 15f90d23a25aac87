"""Fitting power models: recovery of known parameters from synthetic traces, robustness, fit_power and its CLI.

The synthetic traces are more realistic than the model they are fitted with: the iteration period varies
from one iteration to the next (2 % std), the AR(1) noise is on a 0.1 s grid, the samples are instantaneous
readings every 0.1 s with +-10 ms jitter and 1 W white measurement noise. The truth energy is exact (the
truth is piecewise constant).
"""
import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
import pytest

from twin.cluster.gpu_trace import write_nvml_parquet
from twin.cluster.power import Ar1Noise, InferencePower, TrainingPower, load_power_model
from twin.cluster.power_fit import (ENERGY_REL_TOL, PERIOD_REL_TOL, PLATEAU_REL_TOL, check_inference, dominant_period_s,
                                    fit_inference, fit_power, fit_training, main_fit_power, model_kind)
from twin.errors import CalibrationError

CKPT_TIME_REL_TOL = 0.10        # checkpoint interval and duration: edges are known to one 0.1 s sample
NOISE_SIGMA_REL_TOL = 0.20
NOISE_TAU_REL_TOL = 0.50        # correlation time from ~6000 correlated samples: a loose statistic
RATE_REL_TOL = 0.15             # request rate from ~200-800 bursts (Poisson: 3.5-7 % std)
DURATION_REL_TOL = 0.20         # prefill and decode times, resolved to 0.1 s samples


# --- synthetic traces ---------------------------------------------------------------------------------------

def _training_truth(m: TrainingPower, t0: float, t_job: float, seed: int, period_jitter: float, limit_W):
    """Edges and levels of the deterministic truth (iterations of jittered length, checkpoint pauses), and
    the checkpoint windows in job time."""
    rng = np.random.default_rng([seed, 7])
    H = m.P_high_W if limit_W is None else min(m.P_high_W, limit_W)
    E, L, dips = [0.0], [m.P_idle_W], []
    u = 0.0
    while u < t_job:
        seg_end = min(u + m.ckpt_interval_s, t_job)
        tau = u
        while tau < seg_end:
            Ti = m.period_s * max(0.2, 1.0 + period_jitter * rng.standard_normal())
            E.append(t0 + tau), L.append(H)
            if tau + m.duty * Ti < seg_end:
                E.append(t0 + tau + m.duty * Ti), L.append(m.P_low_W)
            tau += Ti
        if seg_end < t_job and m.has_checkpoints:
            E.append(t0 + seg_end), L.append(m.P_ckpt_W)
            u = seg_end + m.ckpt_duration_s
            dips.append((seg_end, min(u, t_job)))
        else:
            u = seg_end
    E.append(t0 + t_job), L.append(m.P_idle_W)
    return np.array(E, float), np.array(L, float), dips


def _sample_times(T_end, dt, rng, jitter_s, nonuniform, gaps):
    if nonuniform:      # steps anywhere from 0.03 to 0.25 s
        t = np.cumsum(rng.uniform(0.3 * dt, 2.5 * dt, int(2 * T_end / dt)))
    else:
        base = np.arange(0.0, T_end, dt)
        t = base + rng.uniform(-jitter_s, jitter_s, base.size)
    t = np.sort(t[(t >= 0) & (t < T_end)])
    for a, b in gaps:
        t = t[(t < a) | (t >= b)]
    return t


@dataclass(frozen=True)
class Synthetic:
    t_s: np.ndarray
    P_W: np.ndarray
    job: tuple[float, float]
    E_job_J: float                  # exact energy of the truth over the job
    P_ckpt_realized_W: float        # the truth's mean power over its checkpoint dips (level + noise there)


def synth_training(m: TrainingPower, *, t_lead_s=40.0, t_job_s=600.0, t_tail_s=40.0, dt_s=0.1, seed=0,
                   period_jitter=0.02, jitter_s=0.01, meas_sigma_W=1.0, limit_W=None, nonuniform=False, gaps=()):
    """A synthetic training trace with its exact truth."""
    rng = np.random.default_rng(seed)
    t0, t1 = t_lead_s, t_lead_s + t_job_s
    E, L, dips = _training_truth(m, t0, t_job_s, seed, period_jitter, limit_W)
    t = _sample_times(t1 + t_tail_s, dt_s, rng, jitter_s, nonuniform, gaps)
    P = L[np.searchsorted(E, t, side="right") - 1]
    job = (t >= t0) & (t < t1)
    P[job] += m.noise.value_W(seed, t[job] - t0)
    P = np.maximum(P + meas_sigma_W * rng.standard_normal(t.size), 0.0)
    det = float(np.sum(L[:-1] * np.diff(E)))            # E[0] = 0 .. E[-1] = t1: subtract the idle lead
    E_job = det - m.P_idle_W * t0 + m.noise.integral_J(seed, 0.0, t_job_s)
    dip_s = sum(b - a for a, b in dips)
    P_ckpt = m.P_ckpt_W + sum(m.noise.integral_J(seed, a, b) for a, b in dips) / dip_s if dips else math.nan
    return Synthetic(t, P, (t0, t1), E_job, P_ckpt)


def synth_inference(m: InferencePower, *, t_lead_s=40.0, t_job_s=1200.0, t_tail_s=40.0, dt_s=0.1, seed=0,
                    jitter_s=0.01, meas_sigma_W=1.0, shape=4.0):
    """Poisson requests with gamma-distributed prefill and decode times (shape 4) of the model's means."""
    rng = np.random.default_rng(seed)
    t0, t1 = t_lead_s, t_lead_s + t_job_s
    n = rng.poisson(m.rate_per_s * t_job_s)
    a = np.sort(rng.uniform(t0, t1, n))
    run = m.run(t0, t1, seed=seed, arrivals_s=a, prefill_s=rng.gamma(shape, m.prefill_s / shape, n),
                decode_s=rng.gamma(shape, m.decode_s / shape, n))
    t = _sample_times(t1 + t_tail_s, dt_s, rng, jitter_s, False, ())
    P = np.maximum(run.power_W(t) + meas_sigma_W * rng.standard_normal(t.size), 0.0)
    return t, P, (t0, t1), run.energy_J(t0, t1)


def _rel(a, b):
    return abs(a / b - 1.0)


def _fitted_job_energy(fit, t0, t1):
    quiet = replace(fit.model, noise=Ar1Noise())
    return quiet.run(fit.t_job_start_s, fit.t_job_stop_s).energy_J(t0, t1)


# --- training: recovery across parameter sets ---------------------------------------------------------------

CASES = [  # period_s, duty, levels idle/high/low/ckpt W, ckpt interval/duration s, noise tau s, seed
    (0.5, 0.3, (60, 300, 150, 90), (150, 12), 1.5, 1),
    (0.7, 0.85, (60, 300, 200, 100), (120, 10), 0.8, 2),
    (1.3, 0.9, (55, 380, 210, 100), (200, 20), 2.0, 3),
    (4.2, 0.5, (70, 420, 180, 110), (240, 15), 1.0, 4),
    (11.0, 0.7, (45, 250, 120, 70), (300, 30), 3.0, 5),
    (30.0, 0.6, (65, 690, 300, 120), (600, 40), 1.5, 6),
]


@pytest.mark.parametrize("period_s, duty, levels, ckpt, tau_s, seed", CASES,
                         ids=[f"T{c[0]}-D{c[1]}" for c in CASES])
def test_training_recovery(period_s, duty, levels, ckpt, tau_s, seed):
    idle, high, low, P_ckpt = levels
    truth = TrainingPower(idle, high, low, duty, period_s, P_ckpt, ckpt[0], ckpt[1],
                          Ar1Noise(0.02 * high, tau_s, 0.1))
    syn = synth_training(truth, t_job_s=max(600.0, 40 * period_s), seed=seed)
    (t0, t1) = syn.job
    fit = fit_training(syn.t_s, syn.P_W)
    m = fit.model
    assert _rel(_fitted_job_energy(fit, t0, t1), syn.E_job_J) <= ENERGY_REL_TOL
    assert _rel(m.mean_power_W(), truth.mean_power_W()) <= ENERGY_REL_TOL
    for name in ("P_high_W", "P_low_W", "P_idle_W"):
        assert _rel(getattr(m, name), getattr(truth, name)) <= PLATEAU_REL_TOL, name
    # a few dips of 10-40 s: their level in the trace differs from the nominal by the noise over them
    # (2-3 % here), so the fit is held to the level the trace shows
    assert _rel(m.P_ckpt_W, syn.P_ckpt_realized_W) <= PLATEAU_REL_TOL
    assert _rel(m.period_s, period_s) <= PERIOD_REL_TOL
    assert fit.square_wave and fit.n_dips >= 1
    assert _rel(m.ckpt_interval_s, truth.ckpt_interval_s) <= CKPT_TIME_REL_TOL
    assert _rel(m.ckpt_duration_s, truth.ckpt_duration_s) <= CKPT_TIME_REL_TOL
    assert _rel(m.noise.sigma_W, truth.noise.sigma_W) <= NOISE_SIGMA_REL_TOL
    assert _rel(m.noise.tau_s, tau_s) <= NOISE_TAU_REL_TOL
    assert abs(fit.t_job_start_s - t0) < 0.2 and abs(fit.t_job_stop_s - t1) < 0.2


LOW_CKPT_CASES = [  # period_s, duty, levels idle/high/low W (checkpoint at the low level), ckpt s, seed
    (1.6, 0.75, (120, 730, 125), (20, 5), 11),
    (0.9, 0.6, (60, 300, 70), (60, 8), 12),
    (5.0, 0.8, (70, 420, 90), (120, 25), 13),
]


@pytest.mark.parametrize("period_s, duty, levels, ckpt, seed", LOW_CKPT_CASES,
                         ids=[f"T{c[0]}-D{c[1]}" for c in LOW_CKPT_CASES])
def test_checkpoints_at_the_low_level_are_found_by_their_length(period_s, duty, levels, ckpt, seed):
    # real ranks wait on the network and on the checkpoint at about the same near-idle power (tests/data/gpu_h200)
    idle, high, low = levels
    truth = TrainingPower(idle, high, low, duty, period_s, low, ckpt[0], ckpt[1], Ar1Noise(0.02 * high, 0.1, 0.05))
    syn = synth_training(truth, t_job_s=max(300.0, 40 * period_s, 6 * sum(ckpt)), dt_s=0.05, seed=seed)
    fit = fit_training(syn.t_s, syn.P_W)
    m = fit.model
    assert fit.n_dips >= 4
    assert _rel(m.period_s, period_s) <= PERIOD_REL_TOL
    assert _rel(m.ckpt_interval_s, ckpt[0]) <= CKPT_TIME_REL_TOL
    assert _rel(m.ckpt_duration_s, ckpt[1]) <= CKPT_TIME_REL_TOL
    assert abs(m.duty - duty) <= 0.05
    assert _rel(_fitted_job_energy(fit, *syn.job), syn.E_job_J) <= ENERGY_REL_TOL


def test_a_warm_up_at_the_low_level_is_no_checkpoint():
    # data loading or compilation before the first step: a long low stretch at the job's start (and the same
    # at checkpoints of the low level inside the job, which are found)
    tp = TrainingPower(60.0, 640.0, 330.0, 0.65, 4.1, 330.0, 120.0, 15.0, Ar1Noise(5.0, 1.0, 0.1))
    t = np.arange(0.0, 900.0, 0.1)
    P = tp.run(100.0, 800.0, seed=1).power_W(t)
    warm = (t >= 100.0) & (t < 130.0)
    P = np.where(t >= 130.0, tp.run(130.0, 830.0, seed=1).power_W(t), P)
    P[warm] = 330.0 + np.random.default_rng(0).normal(0.0, 5.0, warm.sum())
    fit = fit_training(t, P)
    assert fit.n_dips == 5                                   # the checkpoints after 120 s of work each, not the warm-up
    assert _rel(fit.model.ckpt_interval_s, 120.0) <= CKPT_TIME_REL_TOL
    assert _rel(fit.model.ckpt_duration_s, 15.0) <= CKPT_TIME_REL_TOL


def test_inference_window_check_counts_the_requests_running_when_it_opens():
    # a slow server (8 s requests, rare): a window in the middle of the job starts with requests still decoding
    m = InferencePower(60.0, 90.0, 600.0, 380.0, 0.4, 8.0, 0.02)
    worst = 0.0
    for seed in range(40):
        run = m.run(0.0, 3000.0, seed=seed)
        t = np.r_[np.arange(-30.0, 3030.0, 0.1)]
        c = check_inference(m, t, run.power_W(t), (0.0, 3000.0), 1500.0, 1560.0, with_idle=False)
        assert c.E_given_requests_J is not None
        worst = max(worst, c.energy_rel_err)
    assert worst <= ENERGY_REL_TOL                           # was -17 % when the model started empty at the window


BASE = TrainingPower(60.0, 300.0, 150.0, 0.6, 2.7, 90.0, 150.0, 12.0, Ar1Noise(6.0, 1.5, 0.1))


@pytest.mark.parametrize("variant", ["nonuniform", "gaps", "white_noise_8W", "no_leading_idle",
                                     "strictly_periodic_commensurate"])
def test_training_recovery_on_awkward_traces(variant):
    truth, kw = BASE, {}
    if variant == "nonuniform":
        kw = {"nonuniform": True}
    elif variant == "gaps":
        kw = {"gaps": ((100.0, 115.0), (300.0, 330.0), (400.0, 402.0))}
    elif variant == "white_noise_8W":
        kw = {"meas_sigma_W": 8.0}
    elif variant == "no_leading_idle":
        kw = {"t_lead_s": 0.0, "t_tail_s": 5.0}
    else:
        # a nominal period of exactly 5 sampling steps and no timestamp jitter: only the iterations' own
        # variation moves the sampling phase (without it the samples hold no information on the duty cycle)
        truth = replace(BASE, period_s=0.5, duty=0.3)
        kw = {"jitter_s": 0.0}
    syn = synth_training(truth, seed=21, **kw)
    fit = fit_training(syn.t_s, syn.P_W)
    m = fit.model
    assert _rel(_fitted_job_energy(fit, *syn.job), syn.E_job_J) <= ENERGY_REL_TOL
    for name in ("P_high_W", "P_low_W", "P_idle_W"):
        assert _rel(getattr(m, name), getattr(truth, name)) <= PLATEAU_REL_TOL, name
    assert _rel(m.P_ckpt_W, syn.P_ckpt_realized_W) <= PLATEAU_REL_TOL
    assert _rel(m.period_s, truth.period_s) <= PERIOD_REL_TOL
    # the AR(1) process, not the white measurement noise on top of it
    assert _rel(m.noise.sigma_W, truth.noise.sigma_W) <= NOISE_SIGMA_REL_TOL
    assert _rel(m.noise.tau_s, truth.noise.tau_s) <= NOISE_TAU_REL_TOL


def test_power_limit_plateau_is_the_high_level_and_flagged():
    truth = replace(BASE, P_high_W=330.0)
    syn = synth_training(truth, limit_W=280.0, seed=5)
    fit = fit_training(syn.t_s, syn.P_W, P_limit_W=280.0)
    assert _rel(fit.model.P_high_W, 280.0) <= PLATEAU_REL_TOL
    assert fit.high_at_limit
    assert _rel(_fitted_job_energy(fit, *syn.job), syn.E_job_J) <= ENERGY_REL_TOL
    assert not fit_training(syn.t_s, syn.P_W, P_limit_W=400.0).high_at_limit


def test_no_checkpoints_and_no_square_wave():
    steady = TrainingPower(60.0, 250.0, 250.0, 1.0, 1.0, noise=Ar1Noise(4.0, 1.0, 0.1))
    syn = synth_training(steady, seed=3)
    fit = fit_training(syn.t_s, syn.P_W)
    assert not fit.square_wave and fit.n_dips == 0 and math.isinf(fit.model.ckpt_interval_s)
    assert _rel(fit.model.P_high_W, 250.0) <= PLATEAU_REL_TOL
    assert _rel(_fitted_job_energy(fit, *syn.job), syn.E_job_J) <= ENERGY_REL_TOL


def test_fundamental_is_found_where_the_second_harmonic_is_as_strong():
    # duty 0.9: the fundamental holds |sin(0.9 pi)| = 0.31 of the amplitude, the second harmonic 0.29
    t = np.arange(0.0, 300.0, 0.1)
    P = np.where((t % 3.1) < 0.9 * 3.1, 300.0, 150.0)
    assert _rel(dominant_period_s(t, P), 3.1) <= 0.01


def test_traces_that_cannot_be_fitted():
    t = np.arange(0.0, 100.0, 0.1)
    with pytest.raises(CalibrationError, match="no job"):
        fit_training(t, np.full(t.size, 61.0))
    busy = np.where((t % 2.0) < 1.0, 300.0, 150.0)     # ends in a 1 s low phase: not idle
    with pytest.raises(CalibrationError, match="idle"):
        fit_training(t, busy)
    with pytest.raises(CalibrationError, match="samples"):
        fit_training(t[:20], busy[:20])


# --- inference ------------------------------------------------------------------------------------------------

INF_CASES = [  # idle, wait, prefill, decode W; prefill s, decode s, rate /s; seed
    (60, 90, 600, 380, 0.4, 3.0, 0.5, 0),
    (55, 75, 320, 210, 0.6, 6.0, 0.2, 1),
    (70, 110, 680, 450, 0.3, 2.0, 1.0, 2),
]


@pytest.mark.parametrize("idle, wait, pre, dec, pre_s, dec_s, rate, seed", INF_CASES)
def test_inference_recovery(idle, wait, pre, dec, pre_s, dec_s, rate, seed):
    truth = InferencePower(idle, wait, pre, dec, pre_s, dec_s, rate, Ar1Noise(5.0, 0.8, 0.1))
    t, P, (t0, t1), E_true = synth_inference(truth, seed=seed)
    fit = fit_inference(t, P)
    m = fit.model
    E_fit = m.mean_power_W() * (fit.t_job_stop_s - fit.t_job_start_s) \
        + m.P_idle_W * ((fit.t_job_start_s - t0) + (t1 - fit.t_job_stop_s))
    assert _rel(E_fit, E_true) <= ENERGY_REL_TOL
    for name in ("P_idle_W", "P_wait_W", "P_prefill_W", "P_decode_W"):
        assert _rel(getattr(m, name), getattr(truth, name)) <= PLATEAU_REL_TOL, name
    assert _rel(m.rate_per_s, rate) <= RATE_REL_TOL
    assert _rel(m.prefill_s, pre_s) <= DURATION_REL_TOL
    assert _rel(m.decode_s, dec_s) <= DURATION_REL_TOL


# --- fit_power and the command ------------------------------------------------------------------------------

def _write_parquet(path, gpu_traces):
    T, G, F, V = [], [], [], []
    for g, (t, P) in enumerate(gpu_traces):
        T += list(1.7e9 + t) * 2
        G += [g] * (2 * t.size)
        F += ["power_W"] * t.size + ["power_limit_W"] * t.size
        V += list(P) + [400.0] * t.size
    write_nvml_parquet(path, T, G, F, V)


def _write_smi_csv(path, t, P):
    lines = ["timestamp, index, power.draw [W], power.limit [W]"]
    for tt, pp in zip(t, P):
        ts = datetime.fromtimestamp(1.7e9 + tt, tz=timezone.utc).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
        lines.append(f"{ts}, 0, {pp:.2f} W, 400.00 W")
    path.write_text("\n".join(lines) + "\n")


def test_fit_power_writes_a_model_file_and_a_plot(tmp_path):
    traces = [(syn.t_s, syn.P_W) for syn in (synth_training(BASE, seed=s) for s in (31, 32))]
    trace = tmp_path / "trace.parquet"
    _write_parquet(trace, traces)
    out, png = tmp_path / "model.json", tmp_path / "fit.png"
    result = fit_power(trace, "pretraining", out, png)
    assert result.passed
    doc = json.loads(out.read_text())
    assert doc["workload_class"] == "pretraining" and doc["model"]["kind"] == "training"
    assert doc["fit"]["gpus"] == [0, 1]
    for g in doc["fit"]["per_gpu"]:
        assert g["holdout"]["passed"] and g["holdout"]["energy_rel_err"] <= ENERGY_REL_TOL
        assert set(g["holdout"]["plateaus"]) == {"high", "low", "ckpt"}
        assert set(g["in_sample"]["plateaus"]) == {"high", "low", "ckpt", "idle"}
        assert g["fit"]["P_limit_W"] == 400.0
    model = load_power_model(out)
    assert model == result.model
    for name in ("P_high_W", "P_low_W", "P_idle_W", "P_ckpt_W", "period_s"):
        assert _rel(getattr(model, name), getattr(BASE, name)) <= PLATEAU_REL_TOL, name
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_holdout_check_fails_when_the_workload_changes_half_way(tmp_path):
    # the second half runs a different job: a model fitted on the first half must fail the holdout check
    a = synth_training(BASE, t_job_s=600.0, t_tail_s=0.0, seed=41)
    b = synth_training(replace(BASE, P_high_W=380.0, period_s=5.0), t_lead_s=0.0, t_job_s=600.0, seed=42)
    t = np.r_[a.t_s, a.t_s[-1] + 0.1 + b.t_s]
    P = np.r_[a.P_W, b.P_W]
    trace = tmp_path / "trace.csv"
    _write_smi_csv(trace, t, P)
    result = fit_power(trace, "fine_tuning", tmp_path / "m.json", tmp_path / "m.png")
    assert not result.passed and not result.gpus[0].holdout.passed


def test_main_fit_power(tmp_path, capsys):
    # a busy server (2 requests/s, 2.3 s each): its mean power over 300 s varies by about 1 %
    truth = InferencePower(60, 90, 600, 380, 0.3, 2.0, 2.0, Ar1Noise(5.0, 0.8, 0.1))
    t, P, _, _ = synth_inference(truth, t_job_s=600.0, seed=8)
    trace = tmp_path / "serve.csv"
    _write_smi_csv(trace, t, P)
    assert main_fit_power([str(trace), "--class", "online_inference"]) == 0
    assert (tmp_path / "serve.power.json").is_file() and (tmp_path / "serve.power.png").is_file()
    assert load_power_model(tmp_path / "serve.power.json").kind == "inference"
    doc = json.loads((tmp_path / "serve.power.json").read_text())
    assert 0 < doc["fit"]["per_gpu"][0]["holdout"]["energy_rel_sd"] < 0.02
    assert "pass" in capsys.readouterr().out


def test_inference_holdout_reports_the_spread_from_request_randomness(tmp_path):
    # a lightly loaded server over 300 s windows: the halves of one trace differ by several percent by chance
    truth = InferencePower(60, 90, 600, 380, 0.4, 3.0, 0.5, Ar1Noise(5.0, 0.8, 0.1))
    t, P, _, _ = synth_inference(truth, t_job_s=600.0, seed=8)
    trace = tmp_path / "serve.csv"
    _write_smi_csv(trace, t, P)
    result = fit_power(trace, "online_inference", tmp_path / "m.json", tmp_path / "m.png")
    h = result.gpus[0].holdout
    assert 0.015 < h.energy_rel_sd < 0.06
    assert all(p.rel_err <= PLATEAU_REL_TOL for p in h.plateaus)


def test_workload_classes_map_to_models():
    assert model_kind("online_inference") == "inference"
    assert {model_kind(c) for c in ("pretraining", "fine_tuning", "evaluation", "batch_inference", "other")} == \
        {"training"}


@pytest.mark.parametrize("argv_kind, code, fragment", [
    ("no_args", 2, "required"),
    ("bad_class", 2, "invalid choice"),
    ("missing_file", 2, "no such file"),
    ("negative_power", 2, "row 3 (line 4), column 'power.draw [W]': negative power"),
    ("flat", 1, "fit failed"),
    ("help", 0, None),
])
def test_main_fit_power_exit_codes(tmp_path, capsys, argv_kind, code, fragment):
    trace = tmp_path / "t.csv"
    t = np.arange(0.0, 30.0, 0.1)
    P = np.full(t.size, 61.0)
    if argv_kind == "negative_power":
        P[2] = -3.0
    _write_smi_csv(trace, t, P)
    argv = {"no_args": [], "bad_class": [str(trace), "--class", "mining"],
            "missing_file": [str(tmp_path / "none.csv"), "--class", "pretraining"],
            "negative_power": [str(trace), "--class", "evaluation"], "flat": [str(trace), "--class", "pretraining"],
            "help": ["--help"]}[argv_kind]
    assert main_fit_power(argv) == code
    err = capsys.readouterr().err
    if fragment is not None:
        assert fragment in err
        assert len(err.strip().splitlines()) == 1


def test_a_trace_whose_idle_reads_zero_watts_fits_and_writes_a_valid_file(tmp_path):
    syn = synth_training(replace(BASE, P_idle_W=0.0), seed=5)
    trace = tmp_path / "trace.parquet"
    _write_parquet(trace, [(syn.t_s, np.where(syn.P_W < 30.0, 0.0, syn.P_W))])   # idle reads exactly 0 W
    out = tmp_path / "model.json"
    fit_power(trace, "pretraining", out, tmp_path / "fit.png")
    doc = json.loads(out.read_text())             # a complete JSON file, no infinities
    assert doc["model"]["P_idle_W"] == pytest.approx(0.0, abs=1.0)


def test_gpus_of_different_structure_are_not_blended():
    from twin.cluster.power_fit import _combine

    wave = replace(BASE, ckpt_interval_s=math.inf, ckpt_duration_s=0.0)
    flat = replace(wave, P_high_W=510.0, P_low_W=510.0, duty=1.0, period_s=1.0)
    assert _combine([wave, flat, wave]) == wave           # the majority's structure, its median
    assert _combine([wave, flat]) == wave                 # a tie: the first GPU's


def test_a_drifting_residual_is_not_fitted_as_a_slow_noise():
    from twin.cluster.power_fit import MAX_LAGS, _fit_ar1

    dt = 0.1
    t = np.arange(0, 3000.0, dt)
    r = 15.0 * t / t[-1] + np.random.default_rng(1).normal(0.0, 1.0, t.size) * 0.01   # a 15 W creep
    noise = _fit_ar1(t, r - r.mean(), np.ones(t.size, bool), dt)
    assert noise.tau_s <= MAX_LAGS * dt


def test_an_inference_trace_that_begins_while_requests_decode():
    # no idle before the job: the first samples are decoding, before any prefill burst is seen
    truth = InferencePower(60, 90, 600, 380, 0.4, 3.0, 0.5, Ar1Noise(5.0, 0.8, 0.1))
    t, P, (t0, t1), _ = synth_inference(truth, t_lead_s=40.0, t_job_s=1200.0, seed=3)
    cut = t >= t0 + 1.0
    P_cut = P[cut]
    P_cut[:10] = 380.0                               # the trace starts inside a decode
    fit = fit_inference(t[cut], P_cut)
    assert _rel(fit.model.decode_s, 3.0) <= DURATION_REL_TOL


def test_request_time_cannot_cover_busy_time_before_the_first_request():
    from twin.cluster.power_fit import _length_filling

    assert _length_filling(np.array([10.0]), 50.0, 0.0, 50.0) is None          # at most 40 s after the start
    assert _length_filling(np.array([10.0, 30.0]), 20.0, 0.0, 50.0) == pytest.approx(10.0, rel=1e-9)
