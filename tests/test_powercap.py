"""Power-cap response against the measured Zeus sweeps: held-out networks, physical invariants, the loader.

What is fitted on what: for each GPU type (A40, V100) and each of its five networks, the five shared shape
parameters are fitted on the sweeps of the other four networks (all their batch sizes, optimizers, caps).
What is predicted: every sweep of the held-out network from its measurement at the highest cap (one point),
or from that and the cap nearest 60 % of that power (two points), at every cap that was not an input.
"""
import numpy as np
import pytest

from twin.cluster.powercap import (CapShape, fit_cap_shape, fit_folds, leave_batch_sizes_out, leave_one_network_out,
                                   load_zeus_sweeps, second_point, summarize)
from twin.errors import TraceError

HELD_OUT_MEAN_REL_TOL = 0.10    # the criterion for epoch time and average power of held-out workloads
GPUS = ("a40", "v100")


@pytest.fixture(scope="module")
def sweeps(shared_data):
    return {g: load_zeus_sweeps(shared_data / "gpu_power_cap_zeus" / f"summary_power_{g}.csv") for g in GPUS}


@pytest.fixture(scope="module")
def held_out(sweeps):
    folds = {g: fit_folds(sweeps[g]) for g in GPUS}
    return {(g, two): leave_one_network_out(sweeps[g], two_points=two, folds=folds[g])
            for g in GPUS for two in (False, True)}


def test_loader_groups_workloads(sweeps):
    assert len(sweeps["a40"]) == 53 and len(sweeps["v100"]) == 68
    # bert_base_uncased at batch size 8 was measured on two datasets: two workloads, not one
    bert8 = [s for s in sweeps["a40"] if s.network == "bert_base_uncased" and s.workload.split("/")[2] == "8"]
    assert sorted(s.workload.split("/")[0] for s in bert8) == ["sentiment140", "squad"]
    for s in sweeps["a40"] + sweeps["v100"]:
        assert np.all(np.diff(s.cap_W) > 0)


@pytest.mark.parametrize("gpu", GPUS)
@pytest.mark.parametrize("two_points", [False, True], ids=["max_cap_only", "max_and_min_cap"])
def test_held_out_networks_within_10_percent(held_out, gpu, two_points):
    s = summarize(held_out[(gpu, two_points)])
    assert s["n_points"] > 300
    assert s["P_mean_rel_err"] <= HELD_OUT_MEAN_REL_TOL
    assert s["t_mean_rel_err"] <= HELD_OUT_MEAN_REL_TOL


@pytest.mark.parametrize("gpu", GPUS)
def test_held_out_batch_sizes_within_10_percent(sweeps, gpu):
    # one shape per network, fitted on every other batch size (all its sweeps); the other batch sizes predicted
    # from their highest cap. Measured: A40 power 2.7 %, time 5.0 % (87 % of points within 10 %); V100 3.5 %,
    # 3.4 % (89 %)
    s = summarize(leave_batch_sizes_out(sweeps[gpu]))
    assert s["n_points"] > 150
    assert s["P_mean_rel_err"] <= HELD_OUT_MEAN_REL_TOL
    assert s["t_mean_rel_err"] <= HELD_OUT_MEAN_REL_TOL
    assert s["t_within_10pct"] >= 0.8 and s["P_within_10pct"] >= 0.9


def test_single_points_are_noisy(sweeps):
    # why the criterion is on means: epoch time should not rise with a higher cap, yet it does in a quarter of
    # the neighbouring pairs, by up to 15 %
    rises = np.concatenate([s.t_s[1:] / s.t_s[:-1] - 1.0 for s in sweeps["a40"]])
    assert 0.2 < np.mean(rises > 0) < 0.3 and 0.10 < rises.max() < 0.16


@pytest.mark.parametrize("gpu", GPUS)
def test_a_second_measurement_helps(held_out, gpu):
    # workloads differ in how compute-bound they are; a clearly capped point says by how much
    one = summarize(held_out[(gpu, False)])["t_mean_rel_err"]
    two = summarize(held_out[(gpu, True)])["t_mean_rel_err"]
    assert two < one


def test_response_is_physical(sweeps):
    shape = fit_cap_shape(sweeps["a40"])
    caps = np.linspace(60.0, 2000.0, 500)
    for s in sweeps["a40"]:
        r = shape.from_max_cap(s.cap_W[-1], s.P_W[-1], s.t_s[-1])
        P, st = r.power_W(caps), r.stretch(caps)
        assert np.all(np.diff(P) >= -1e-9) and np.all(P <= r.P_inf_W * (1 + 1e-12))
        assert np.all(np.diff(st) <= 1e-12) and np.all(st >= 1.0 - 1e-12)
        assert r.power_W(1e6) == pytest.approx(r.P_inf_W, rel=1e-6)
        assert r.stretch(1e6) == pytest.approx(1.0, abs=1e-6)
        # the measurement it was built from is reproduced
        assert r.power_W(s.cap_W[-1]) == pytest.approx(s.P_W[-1], rel=1e-9)
        assert r.time_s(s.cap_W[-1]) == pytest.approx(s.t_s[-1], rel=1e-9)


def test_two_point_response_reproduces_both_points(sweeps):
    shape = fit_cap_shape(sweeps["v100"])
    n = 0
    for s in sweeps["v100"]:
        j = second_point(s)
        top, low = (s.cap_W[-1], s.P_W[-1], s.t_s[-1]), (s.cap_W[j], s.P_W[j], s.t_s[j])
        r = shape.from_two_caps(top, low)
        assert r.time_s(top[0]) == pytest.approx(top[2], rel=1e-9)
        # where the cap slows the workload and the fraction is not clipped, the lower point is met exactly
        if 0.0 < r.compute_fraction < 1.0 and r.clock(low[0]) < 0.95:
            assert r.time_s(low[0]) == pytest.approx(low[2], rel=1e-9)
            n += 1
    assert n >= 20


def test_light_workload_is_not_slowed():
    shape = CapShape(knee_n=7.0, P_static_W=65.0, f_voltage_floor=0.85, f_min=0.2, compute_fraction=0.85)
    r = shape.response(P_inf_W=50.0, t_inf_s=10.0)
    assert r.stretch(100.0) == pytest.approx(1.0) and r.power_W(100.0) < 50.0


@pytest.mark.parametrize("edit, where", [
    (lambda l: l.replace("time_per_epoch", "time"), "column 'time_per_epoch'"),
    (lambda l: l if not l.startswith("cifar100,shufflenetv2,1024,adadelta,125,") else
     l.replace(",125,", ",125,nan,", 1).rsplit(",", 2)[0] + ",1", "row 2, column 'time_per_epoch'"),
])
def test_bad_sweep_file(tmp_path, shared_data, edit, where):
    src = (shared_data / "gpu_power_cap_zeus" / "summary_power_a40.csv").read_text().splitlines()
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(edit(l) for l in src) + "\n")
    with pytest.raises(TraceError) as e:
        load_zeus_sweeps(p)
    assert str(p) in str(e.value) and where in str(e.value)
