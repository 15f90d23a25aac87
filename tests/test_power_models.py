"""GPU power models: exact energy over any interval, additivity, job events, AR(1) noise, model files."""
import json
import math

import numpy as np
import pytest

from twin.cluster import power
from twin.cluster.power import (Ar1Noise, GpuLoad, InferencePower, TrainingPower, load_power_model,
                                model_from_dict, model_to_dict, rack_energy_J)
from twin.errors import ScenarioError

ADDITIVITY_RTOL = 1e-9          # the brief's requirement for sums over sub-intervals
ALIGNED_RTOL = 1e-9             # midpoint rule on a grid holding every edge: exact up to rounding
NOISE_SIGMA_RTOL = 0.03         # sample std of 400 000 AR(1) cells with ~20-cell correlation (~0.7 % std error)
NOISE_PHI_ATOL = 0.01

TRAIN = TrainingPower(P_idle_W=62.0, P_high_W=310.0, P_low_W=145.0, duty=0.625, period_s=0.8, P_ckpt_W=88.0,
                      ckpt_interval_s=40.0, ckpt_duration_s=6.4, noise=Ar1Noise(7.0, 1.5, 0.1))
INFER = InferencePower(P_idle_W=58.0, P_wait_W=85.0, P_prefill_W=620.0, P_decode_W=390.0, prefill_s=0.4,
                       decode_s=3.0, rate_per_s=0.5, noise=Ar1Noise(4.0, 0.6, 0.1))


def _midpoint(f, a, b, n):
    h = (b - a) / n
    t = a + h * (np.arange(n) + 0.5)
    return float(f(t).sum() * h), h


# --- exact integrals ----------------------------------------------------------------------------------------

def test_training_energy_equals_fine_numerical_integral_on_an_aligned_grid():
    # every edge (period 0.8 s, high 0.5 s, dips every 46.4 s, noise cells of 0.1 s, start and stop) lies on the
    # 1e-4 s grid, so the midpoint rule is exact for this piecewise-constant power up to rounding
    run = TRAIN.run(1000.0, 1095.0, seed=4)
    a, b = 990.0, 1100.0
    E_num, h = _midpoint(run.power_W, a, b, 1_100_000)
    assert h == pytest.approx(1e-4)
    assert run.energy_J(a, b) == pytest.approx(E_num, rel=ALIGNED_RTOL)


def _jump_bound(run, quiet_run, a, b, n, n_det_jumps):
    """The midpoint rule errs by at most |jump| * h / 2 at each discontinuity: deterministic jumps (from the
    noise-free run) and noise-cell jumps counted separately."""
    h = (b - a) / n
    t = a + h * (np.arange(n) + 0.5)
    det_jump = float(np.abs(np.diff(quiet_run.power_W(t))).max())
    noise = run.model.noise
    k = int((b - a) / noise.dt_s) + 2
    noise_jump = float(np.abs(np.diff(noise.cells_W(run.seed, 0, k))).max())
    return (n_det_jumps * det_jump + k * noise_jump) * h / 2


def _quiet(run):
    from dataclasses import replace
    return replace(run, model=replace(run.model, noise=Ar1Noise()))


def test_training_energy_equals_fine_numerical_integral_off_grid():
    m = TrainingPower(P_idle_W=55.0, P_high_W=402.0, P_low_W=171.0, duty=0.43, period_s=1.37, P_ckpt_W=97.0,
                      ckpt_interval_s=23.3, ckpt_duration_s=4.1, noise=Ar1Noise(9.0, 0.7, 0.13))
    run = m.run(17.123, 88.77, seed=9)
    a, b, n = 11.0, 93.0, 1_000_000
    E_num, _ = _midpoint(run.power_W, a, b, n)
    cycles = (b - a) / (m.ckpt_interval_s + m.ckpt_duration_s) + 1
    bound = _jump_bound(run, _quiet(run), a, b, n, 2 * ((b - a) / m.period_s + 1) + 2 * cycles + 2)
    assert abs(run.energy_J(a, b) - E_num) <= bound
    # tight enough to see one edge misplaced by 20 ms
    assert bound < (m.P_high_W - m.P_low_W) * 0.02


def test_inference_energy_by_hand():
    m = InferencePower(P_idle_W=50.0, P_wait_W=80.0, P_prefill_W=600.0, P_decode_W=400.0, prefill_s=0.5,
                       decode_s=2.0, rate_per_s=0.1)
    run = m.run(10.0, 20.0, arrivals_s=[11.0, 12.0])
    # idle [0,10) wait [10,11) prefill [11,11.5) decode [11.5,12) prefill [12,12.5) decode [12.5,14.5) wait [14.5,20)
    # idle [20, 25)
    E = 50 * 10 + 80 * 1 + 600 * 0.5 + 400 * 0.5 + 600 * 0.5 + 400 * 2.0 + 80 * 5.5 + 50 * 5
    assert run.energy_J(0.0, 25.0) == pytest.approx(E, rel=1e-12)
    assert run.power_W([9.99, 10.0, 11.2, 11.7, 12.1, 13.0, 14.5, 19.99, 20.0]).tolist() == \
        [50, 80, 600, 400, 600, 400, 80, 80, 50]
    # a request still running at the stop is cut there
    cut = m.run(10.0, 13.0, arrivals_s=[11.0, 12.0])
    assert cut.energy_J(0.0, 25.0) == pytest.approx(50 * 10 + 80 + 300 + 200 + 300 + 400 * 0.5 + 50 * 12, rel=1e-12)


def test_inference_energy_equals_fine_numerical_integral():
    run = INFER.run(5.0, 60.0, seed=3)
    assert run.arrivals_s.size > 15
    a, b, n = 0.0, 65.0, 1_300_000
    E_num, _ = _midpoint(run.power_W, a, b, n)
    bound = _jump_bound(run, _quiet(run), a, b, n, 4 * run.arrivals_s.size + 2)
    assert abs(run.energy_J(a, b) - E_num) <= bound
    assert bound < (INFER.P_prefill_W - INFER.P_decode_W) * 0.02


@pytest.mark.parametrize("which", ["training", "training_forever", "inference", "gpu"])
def test_sub_intervals_add_up_to_the_whole(which):
    if which == "training":
        obj = TRAIN.run(1234.567, 1234.567 + 917.3, seed=1)
    elif which == "training_forever":
        obj = TRAIN.run(1234.567, seed=2)
    elif which == "inference":
        obj = INFER.run(1234.567, 1234.567 + 917.3, seed=5)
    else:
        obj = GpuLoad(60.0, (TRAIN.run(1300.0, 1700.0, seed=1), INFER.run(1750.0, 2100.0, seed=2)))
    a, b = 1200.0, 2200.0
    rng = np.random.default_rng(0)
    cuts = np.r_[a, np.sort(rng.uniform(a, b, 400)), b]
    parts = sum(obj.energy_J(x, y) for x, y in zip(cuts[:-1], cuts[1:]))
    assert parts == pytest.approx(obj.energy_J(a, b), rel=ADDITIVITY_RTOL)
    # plant steps of 1 s: the same
    steps = np.arange(a, b + 0.5, 1.0)
    assert sum(obj.energy_J(x, y) for x, y in zip(steps[:-1], steps[1:])) == \
        pytest.approx(obj.energy_J(a, b), rel=ADDITIVITY_RTOL)


def test_job_start_and_stop_inside_a_step():
    run = TRAIN.run(100.25, 160.75, seed=0)
    assert run.energy_J(0.0, 100.25) == pytest.approx(62.0 * 100.25, rel=1e-15)
    assert run.energy_J(160.75, 200.0) == pytest.approx(62.0 * 39.25, rel=1e-15)
    assert run.energy_J(100.0, 101.0) == pytest.approx(62.0 * 0.25 + run.energy_J(100.25, 101.0), rel=1e-12)
    assert run.excess_energy_J(0.0, 100.25) == 0.0


def test_mean_power_is_the_long_run_average():
    m = TrainingPower(P_idle_W=60.0, P_high_W=300.0, P_low_W=150.0, duty=0.3, period_s=2.0, P_ckpt_W=90.0,
                      ckpt_interval_s=100.0, ckpt_duration_s=20.0)
    run = m.run(0.0)
    assert run.energy_J(0.0, 120.0 * 7) / (120.0 * 7) == pytest.approx(m.mean_power_W(), rel=1e-12)
    assert m.mean_power_W() == pytest.approx((100 * (0.3 * 300 + 0.7 * 150) + 20 * 90) / 120, rel=1e-12)
    # each training segment starts with a fresh iteration: at 120 s (after the first dip) the power is high
    assert run.power_W([99.9, 100.0, 119.99, 120.0, 120.61]).tolist() == [150.0, 90.0, 90.0, 300.0, 150.0]


def test_inference_mean_power_is_the_mg_inf_expectation():
    run = INFER.run(0.0, 20000.0, seed=11)
    quiet = InferencePower(**{**INFER.__dict__, "noise": Ar1Noise()})
    E = quiet.run(0.0, 20000.0, arrivals_s=run.arrivals_s).energy_J(0.0, 20000.0)
    # 10 000 requests: the time average of the busy fractions is within ~1 % of the expectation
    assert E / 20000.0 == pytest.approx(INFER.mean_power_W(), rel=0.02)


# --- noise -------------------------------------------------------------------------------------------------

def test_noise_is_reproducible_whatever_is_asked_first():
    n = Ar1Noise(5.0, 2.0, 0.1)
    power._unit_block.cache_clear()
    late = n.value_W(3, np.array([123456.78]))
    power._unit_block.cache_clear()
    n.integral_J(3, 0.0, 1000.0)
    assert n.value_W(3, np.array([123456.78])) == late
    assert n.value_W(4, np.array([123456.78])) != late


def test_noise_blocks_form_one_ar1_sequence():
    n = Ar1Noise(1.0, 3.0, 0.1)
    B, phi = n.block_cells, n.phi
    # the reference: one recursion over the innovations of blocks -1, 0, 1, 2 from zero
    eps = np.concatenate([power._innovations(8, b, B) for b in (-1, 0, 1, 2)])
    x, ref = 0.0, np.empty(eps.size)
    c = math.sqrt(1 - phi * phi)
    for i, e in enumerate(eps):
        x = phi * x + c * e
        ref[i] = x
    assert np.max(np.abs(n.cells_W(8, 0, 3 * B) - ref[B:])) < 1e-12


def test_noise_statistics():
    n = Ar1Noise(6.0, 2.0, 0.1)
    x = n.cells_W(1, 0, 400_000)
    assert x.std() == pytest.approx(6.0, rel=NOISE_SIGMA_RTOL)
    assert np.corrcoef(x[:-1], x[1:])[0, 1] == pytest.approx(n.phi, abs=NOISE_PHI_ATOL)
    assert np.corrcoef(x[:-10], x[10:])[0, 1] == pytest.approx(n.phi ** 10, abs=NOISE_PHI_ATOL)
    # the integral is the sum over cells
    assert n.integral_J(1, 0.0, 40_000.0) == pytest.approx(x.sum() * 0.1, rel=1e-9)


def test_zero_noise_is_deterministic():
    m = TrainingPower(P_idle_W=60.0, P_high_W=300.0, P_low_W=150.0, duty=0.5, period_s=1.0)
    assert m.run(0.0, seed=1).energy_J(0.0, 10.0) == m.run(0.0, seed=2).energy_J(0.0, 10.0) == 2250.0


# --- a GPU and a rack --------------------------------------------------------------------------------------

def test_gpu_and_rack_energy():
    r1, r2 = TRAIN.run(10.0, 50.0, seed=1), INFER.run(60.0, 90.0, seed=2)
    gpu = GpuLoad(61.0, (r2, r1))
    assert gpu.runs == (r1, r2)
    E = 61.0 * 100.0 + r1.excess_energy_J(0.0, 100.0) + r2.excess_energy_J(0.0, 100.0)
    assert gpu.energy_J(0.0, 100.0) == pytest.approx(E, rel=1e-12)
    assert gpu.energy_J(50.0, 60.0) == pytest.approx(610.0, rel=1e-12)
    assert rack_energy_J([gpu, GpuLoad(55.0)], 0.0, 100.0) == pytest.approx(E + 5500.0, rel=1e-12)
    with pytest.raises(ValueError, match="overlap"):
        GpuLoad(61.0, (TRAIN.run(10.0, 50.0), TRAIN.run(49.0, 60.0)))


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="duty"):
        TrainingPower(60.0, 300.0, 150.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="P_high_W"):
        TrainingPower(60.0, -1.0, 150.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="t_stop_s"):
        TRAIN.run(10.0, 10.0)
    with pytest.raises(ValueError, match="within"):
        INFER.run(10.0, 20.0, arrivals_s=[25.0])
    with pytest.raises(ValueError, match="finite t_stop_s"):
        INFER.run(10.0)


# --- model files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [TRAIN, INFER, TrainingPower(60.0, 300.0, 150.0, 0.5, 1.0)])
def test_model_file_round_trip(tmp_path, model):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"format": power.MODEL_FORMAT, "version": power.MODEL_VERSION,
                             "model": model_to_dict(model)}, allow_nan=False))
    assert load_power_model(p) == model


def test_model_file_problems_are_reported_together(tmp_path):
    d = model_to_dict(TRAIN)
    del d["P_low_W"]
    d["P_hihg_W"] = 300.0
    d["duty"] = "half"
    with pytest.raises(ScenarioError) as e:
        model_from_dict(d, "m.json: model")
    msg = str(e.value)
    assert "m.json: model.P_low_W: missing" in msg
    assert "m.json: model.P_hihg_W: unknown key" in msg
    assert "m.json: model.duty: expected a number" in msg
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"format": "something else", "model": {}}))
    with pytest.raises(ScenarioError, match="format"):
        load_power_model(p)
