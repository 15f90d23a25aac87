"""The cluster simulator: exact energy (oracle, conservation, additivity, query-step invariance), the power-model
integrals, preemption at checkpoints, checkpoint-restore-continue, and bad inputs."""
import dataclasses
import math

import numpy as np
import pytest
import simpy

from twin.cluster.jobs import Job, WorkloadClass
from twin.cluster.power import Ar1Noise, InferencePower, TrainingPower
from twin.cluster.schedulers import EasyBackfill, Fifo, Signals, ThermalDispatch
from twin.cluster.sim import (EVENT_KINDS, CapPolicy, Cluster, ClusterSpec, ConstantPower, FittedPower, Plan,
                              SquareWavePower, Wave)
from twin.errors import TwinError

TPS = 1000
CONSERVATION_RTOL = 1e-9   # the bound: job + idle energies = rack energies = liquid + air heat
ORACLE_RTOL = 1e-12        # hand-computed energies of constant-power jobs: exact up to rounding
QUADRATURE_RTOL = 1e-6     # midpoint rule on 2e6 cells across ~60 jumps of <= 450 W over ~125 s: error < 1e-7
PT, FT, EV, ON, BI, OT = (WorkloadClass.PRETRAINING, WorkloadClass.FINE_TUNING, WorkloadClass.EVALUATION,
                          WorkloadClass.ONLINE_INFERENCE, WorkloadClass.BATCH_INFERENCE, WorkloadClass.OTHER)
SMALL = ClusterSpec(n_racks=1, nodes_per_rack=2, gpus_per_node=4, P_idle_W=50.0, P_max_W=600.0, f_liquid=0.8)
THREE = ClusterSpec(n_racks=3, nodes_per_rack=2, gpus_per_node=4, P_idle_W=55.0, P_max_W=700.0, f_liquid=0.7)
CONST = ConstantPower({PT: 500.0, FT: 375.0, EV: 300.0, BI: 300.0, ON: 250.0}, default_W=250.0)
WAVES = SquareWavePower({PT: Wave(690.0, 380.0, 7.3, 0.7), FT: Wave(640.0, 350.0, 4.1, 0.65),
                         ON: Wave(450.0, 250.0, 1.7, 0.5), BI: Wave(560.0, 300.0, 2.3, 0.6)},
                        default=Wave(500.0, 300.0, 5.0, 0.5))
CAP = CapPolicy(T_cap_K=318.15, T_release_K=313.15, cap_W=450.0)


def job(jid, submit, dur, n, wc, **kw):
    return Job(job_id=jid, submit_time_s=submit, duration_s=dur, n_gpus=n, workload_class=wc, **kw)


class Run:
    """A cluster stepped like the engine does: every step_s, the energy of the step, then the thermal state.
    ``checkpoint_at`` (step numbers) keeps ``get_state()`` after those steps, as the engine's checkpoints do."""

    def __init__(self, spec, scheduler, power, jobs, *, cap=None, thermal=None, step_s=60, env=None,
                 k0=0, state=None, checkpoint_at=()):
        self.env = env or simpy.Environment()
        self.c = Cluster(self.env, spec, scheduler, {"default": power}, ticks_per_s=TPS, cap=cap)
        if state is None:
            self.c.submit(jobs)
        else:
            self.c.set_state(state)
        self.step_s, self.thermal, self.k = step_s, thermal, k0
        self.E = {}          # step -> rack energies
        self.states = {}
        self.checkpoint_at = set(checkpoint_at)

    def run(self, until_s):
        env, c, h = self.env, self.c, self.step_s

        def plant():
            while (self.k + 1) * h <= until_s:
                yield env.timeout(h * TPS)
                k = self.k
                self.E[k] = c.energy_J(k * h, (k + 1) * h)
                self.k = k + 1
                T, ok = self.thermal((k + 1) * h) if self.thermal else (305.0, True)
                c.set_thermal_state(T, ok)
                if self.k in self.checkpoint_at:
                    self.states[self.k] = c.get_state()

        env.run(until=env.process(plant()))
        return self


def random_jobs(seed, n=60, hours=30, max_gpus=6):
    rng = np.random.default_rng(seed)
    classes = [PT, FT, EV, ON, BI, OT]
    out = []
    for i in range(n):
        wc = classes[rng.integers(len(classes))]
        submit = int(rng.integers(0, hours * 3600 // 2))
        dur = int(rng.integers(60, 4 * 3600))
        pre = wc.deferrable and rng.random() < 0.6
        out.append(job(f"q{i:03d}", submit, dur, int(rng.integers(1, max_gpus + 1)), wc, preemptible=pre,
                       checkpoint_interval_s=int(rng.integers(120, 1800)) if pre or rng.random() < 0.3 else None,
                       deadline_s=submit + 3 * dur + 600 if wc.deferrable and rng.random() < 0.5 else None))
    return tuple(out)


def rough_thermal(seed, hours=30):
    """Hot coolant and refused heat in random windows: caps, uncaps, holds and sheds."""
    rng = np.random.default_rng(seed + 100)
    hot = rng.uniform(0, hours * 3600, 8)
    refuse = rng.uniform(0, hours * 3600, 3)

    def thermal(t_s):
        T = 320.0 if np.any((hot <= t_s) & (t_s < hot + 2400)) else 305.0
        return T, not np.any((refuse <= t_s) & (t_s < refuse + 1800))
    return thermal


def signals(seed, hours=40):
    rng = np.random.default_rng(seed + 200)
    return Signals(heat=rng.uniform(0, 1, hours), price=rng.uniform(20, 200, hours), w_heat=1.0, w_price=1.0)


# ------------------------------------------------------------------------------------------ energy: oracles
def test_energy_oracle_constant_power():
    # FIFO, 8 GPUs: the golden scenario of test_schedulers; every job draws its class level, idle GPUs 50 W
    jobs = (job("j01", 0, 100, 4, PT), job("j02", 0, 50, 2, FT), job("j03", 10, 100, 4, PT),
            job("j04", 20, 30, 2, EV), job("j05", 20, 200, 1, BI), job("j06", 30, 40, 8, PT),
            job("j07", 40, 20, 1, OT), job("j08", 60, 10, 3, ON), job("j09", 70, 60, 2, FT, checkpoint_interval_s=25),
            job("j10", 80, 30, 1, EV))
    r = Run(SMALL, Fifo(), CONST, jobs, step_s=10).run(400)
    E_jobs = {"j01": 500 * 400, "j02": 375 * 100, "j03": 500 * 400, "j04": 300 * 60, "j05": 300 * 200,
              "j06": 500 * 320, "j07": 250 * 20, "j08": 250 * 30, "j09": 375 * 120, "j10": 300 * 30}
    for jid, E in E_jobs.items():
        assert r.c.job_energy_J(jid) == pytest.approx(E, rel=ORACLE_RTOL)
    busy_gpu_s = 4 * 100 + 2 * 50 + 4 * 100 + 2 * 30 + 200 + 8 * 40 + 20 + 3 * 10 + 2 * 60 + 30
    E_total = sum(E_jobs.values()) + 50.0 * (8 * 400 - busy_gpu_s)     # 742 000 J + 76 000 J
    assert r.c.energy_J(0, 400)[0] == pytest.approx(E_total, rel=ORACLE_RTOL)
    # [340, 350): j07 (250 W), j08 (3 x 250 W), j09 (2 x 375 W), j10 (300 W) and one idle GPU
    assert r.E[34][0] == pytest.approx(10 * (250 + 750 + 750 + 300 + 50), rel=ORACLE_RTOL)
    liquid, air = r.c.heat_J(340, 350)
    assert liquid[0] == pytest.approx(0.8 * 21_000, rel=ORACLE_RTOL) and air[0] == pytest.approx(0.2 * 21_000)


def test_rack_split_follows_the_placement():
    # 2 racks of one 4-GPU node: a 6-GPU job takes 4 GPUs of one rack and 2 of the other
    spec = ClusterSpec(n_racks=2, nodes_per_rack=1, gpus_per_node=4, P_idle_W=40.0, P_max_W=600.0, f_liquid=1.0)
    r = Run(spec, Fifo(), CONST, [job("w", 0, 100, 6, PT)], step_s=100).run(200)
    assert [e for e in r.c.events if e.kind == "start"][0].detail == "n0:4,n1:2"
    np.testing.assert_allclose(r.E[0], [4 * 500 * 100, 2 * 500 * 100 + 2 * 40 * 100], rtol=ORACLE_RTOL)
    np.testing.assert_allclose(r.E[1], [4 * 40 * 100, 4 * 40 * 100], rtol=ORACLE_RTOL)


def test_square_wave_integral_equals_fine_quadrature_in_wall_time():
    j = job("x", 0, 500, 1, ON)
    w = WAVES.waves[ON]
    for cap in (None, 300.0):
        s = WAVES.stretch(j, cap)
        hi, lo = (w.P_hi_W, w.P_lo_W) if cap is None else (min(w.P_hi_W, cap), min(w.P_lo_W, cap))
        on_wall, off_wall = w.duty * w.period_s * w.P_hi_W / hi, (1 - w.duty) * w.period_s  # wall time per phase
        assert s == pytest.approx((on_wall + off_wall) / w.period_s)
        p0, p1 = 0.3, 100.9                      # progress; the wall time at progress p:

        def wall(p):
            k, r = divmod(p, w.period_s)
            on = w.duty * w.period_s
            return k * (on_wall + off_wall) + (r * on_wall / on if r < on else on_wall + (r - on))

        t0, t1 = wall(p0), wall(p1)
        n = 2_000_000
        t = t0 + (t1 - t0) * (np.arange(n) + 0.5) / n
        phase = np.mod(t, on_wall + off_wall)
        E_num = float(np.where(phase < on_wall, hi, lo).sum() * (t1 - t0) / n)
        assert WAVES.energy_J(j, p0, p1, cap) == pytest.approx(E_num, rel=QUADRATURE_RTOL)


# ------------------------------------------------------------------------------------------ energy: invariants
@pytest.mark.parametrize("seed", range(3))
def test_energy_conservation_and_additivity(seed):
    jobs = random_jobs(seed)
    r = Run(THREE, ThermalDispatch(signals(seed), max_defer_s=6 * 3600), WAVES, jobs, cap=CAP,
            thermal=rough_thermal(seed)).run(30 * 3600)
    c = r.c
    sl = c.service_levels()
    assert sl.n_preemptions > 0 and sl.throttled_gpu_h > 0   # the run exercised preemption and caps
    assert {e.kind for e in c.events} == set(EVENT_KINDS)    # and every kind of event
    now = 30 * 3600
    E_racks = c.energy_J(0, now)
    E_steps = np.sum([r.E[k] for k in range(len(r.E))], axis=0)
    booked = sum(c.job_energy_J(j.job_id) for j in jobs) + c.idle_energy_J()
    liquid, air = c.heat_J(0, now)
    total = E_racks.sum()
    assert abs(booked - total) <= CONSERVATION_RTOL * total
    np.testing.assert_allclose(E_steps, E_racks, rtol=CONSERVATION_RTOL)
    np.testing.assert_allclose(liquid + air, E_racks, rtol=CONSERVATION_RTOL)
    np.testing.assert_allclose(liquid, THREE.f_liquid * E_racks, rtol=CONSERVATION_RTOL)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        a, b, d = sorted(rng.choice(np.arange(0, now + 1, 60), 3, replace=False).tolist())
        np.testing.assert_allclose(c.energy_J(a, d), c.energy_J(a, b) + c.energy_J(b, d), rtol=CONSERVATION_RTOL)


def test_energy_does_not_depend_on_the_query_step():
    jobs = random_jobs(7)
    sched = ThermalDispatch(signals(7), max_defer_s=6 * 3600)
    fine = Run(THREE, sched, WAVES, jobs, cap=CAP, step_s=60).run(30 * 3600)
    coarse = Run(THREE, sched, WAVES, jobs, cap=CAP, step_s=1080).run(30 * 3600)
    assert fine.c.events == coarse.c.events
    np.testing.assert_allclose(fine.c.energy_J(0, 30 * 3600), coarse.c.energy_J(0, 30 * 3600),
                               rtol=CONSERVATION_RTOL)
    np.testing.assert_allclose(sum(fine.E[k] for k in range(18)), coarse.E[0], rtol=CONSERVATION_RTOL)


# ------------------------------------------------------------------------------------------ preemption
class PreemptOnArrival:
    """FIFO, but the arrival of job ``trigger`` preempts job ``victim``."""

    def __init__(self, victim, trigger):
        self.victim, self.trigger = victim, trigger

    def plan(self, c):
        ready = [r.job.job_id for r in c.iter_ready()]
        if self.trigger in ready and any(r.job.job_id == self.victim for r in c.running()):
            return Plan(preempt=(self.victim,))
        return Fifo().plan(c)


def test_preemption_loses_exactly_the_work_since_the_last_checkpoint():
    # x checkpoints every 300 s of work; capped from 450 s (x2 at 200 W), so at 700 s it has done
    # 450 + 250 / 2 = 575 s: back to the checkpoint at 300 s, 275 s lost; it restarts at once, capped
    power = ConstantPower({FT: 400.0}, default_W=200.0)
    cap = CapPolicy(T_cap_K=318.15, T_release_K=313.15, cap_W=200.0)
    jobs = (job("x", 0, 1000, 4, FT, preemptible=True, checkpoint_interval_s=300), job("t", 700, 100, 1, OT))
    r = Run(SMALL, PreemptOnArrival("x", "t"), power, jobs, cap=cap, step_s=50,
            thermal=lambda t: (320.0 if t >= 450 else 305.0, True)).run(3000)
    assert [tuple(e) for e in r.c.events] == [
        (0.0, "submit", "x", ""), (0.0, "start", "x", "n0:4"),
        (300.0, "checkpoint", "x", "p=300.0s"),
        (450.0, "cap", "", "200W"),
        (700.0, "submit", "t", ""),
        (700.0, "preempt", "x", "resume=300.0s lost=275.0s"),
        (700.0, "start", "x", "n0:4 cap=200W"), (700.0, "start", "t", "n1:1 cap=200W"),
        (800.0, "end", "t", ""),
        (1300.0, "checkpoint", "x", "p=600.0s"),       # 300 s of work at x2
        (1900.0, "checkpoint", "x", "p=900.0s"),
        (2100.0, "end", "x", ""),
    ]
    sl = r.c.service_levels()
    assert sl.lost_work_gpu_h == pytest.approx(4 * 275 / 3600)
    assert sl.n_preemptions == 1
    assert sl.throttled_gpu_h == pytest.approx(4 * (2100 - 450) / 3600)  # t draws 200 W: the cap does not slow it
    # the lost work is paid for: 400 J per GPU per second of work, capped or not (beta = 1)
    assert r.c.job_energy_J("x") == pytest.approx(4 * 400 * (1000 + 275), rel=ORACLE_RTOL)


def test_only_preemptible_jobs_can_be_preempted():
    jobs = (job("x", 0, 1000, 4, FT, checkpoint_interval_s=300), job("t", 700, 100, 1, OT))
    with pytest.raises(TwinError, match="cannot preempt job 'x'"):
        Run(SMALL, PreemptOnArrival("x", "t"), CONST, jobs, step_s=50).run(1000)


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("power", [WAVES, CONST], ids=["waves", "constant"])
def test_restore_and_continue_gives_the_same_log_and_energies(power):
    seed = 2
    jobs = random_jobs(seed)
    sched = ThermalDispatch(signals(seed), max_defer_s=6 * 3600)
    kw = dict(cap=CAP, thermal=rough_thermal(seed), step_s=60)
    at = (137, 500, 1111)
    full = Run(THREE, sched, power, jobs, checkpoint_at=at, **kw).run(30 * 3600)
    assert full.c.service_levels().n_preemptions > 0
    for k in at:
        env = simpy.Environment(initial_time=k * 60 * TPS)
        again = Run(THREE, sched, power, jobs, env=env, k0=k, state=full.states[k], **kw).run(30 * 3600)
        assert again.c.events == full.c.events
        for i in range(k, full.k):
            assert np.array_equal(again.E[i], full.E[i]), i
        assert again.c.service_levels() == full.c.service_levels()
        assert [again.c.job_energy_J(j.job_id) for j in jobs] == [full.c.job_energy_J(j.job_id) for j in jobs]


def test_restore_needs_the_checkpoint_time():
    r = Run(SMALL, Fifo(), CONST, [job("a", 0, 100, 1, PT)], checkpoint_at=(1,)).run(120)
    c = Cluster(simpy.Environment(initial_time=0), SMALL, Fifo(), {"default": CONST}, ticks_per_s=TPS)
    with pytest.raises(TwinError, match="environment is at tick 0, the snapshot at tick 60000"):
        c.set_state(r.states[1])
    c = Cluster(simpy.Environment(initial_time=60_000), THREE, Fifo(), {"default": CONST}, ticks_per_s=TPS)
    with pytest.raises(TwinError, match="another spec"):
        c.set_state(r.states[1])


def test_same_inputs_same_log():
    jobs = random_jobs(11)
    runs = [Run(THREE, EasyBackfill(), WAVES, jobs, cap=CAP, thermal=rough_thermal(11)).run(20 * 3600)
            for _ in range(2)]
    assert runs[0].c.events == runs[1].c.events
    assert all(np.array_equal(runs[0].E[k], runs[1].E[k]) for k in runs[0].E)


# ------------------------------------------------------------------------------------------ fitted models
TRAIN = TrainingPower(P_idle_W=60.0, P_high_W=640.0, P_low_W=330.0, duty=0.65, period_s=4.1, P_ckpt_W=150.0,
                      ckpt_interval_s=600.0, ckpt_duration_s=30.0, noise=Ar1Noise(15.0, 2.0, 1.0))
INFER = InferencePower(P_idle_W=60.0, P_wait_W=90.0, P_prefill_W=600.0, P_decode_W=380.0, prefill_s=0.4,
                       decode_s=3.0, rate_per_s=0.3, noise=Ar1Noise(5.0, 0.6, 1.0))


class _Resp:
    """A power-cap response of the shape of twin.cluster.powercap.CapResponse (power and stretch at a cap)."""

    P_inf_W = 500.0

    def power_W(self, cap_W):
        return min(self.P_inf_W, cap_W)

    def stretch(self, cap_W):
        return 1.0 + 0.5 * max(0.0, self.P_inf_W / cap_W - 1.0)


def test_fitted_models_plug_in_exactly():
    fitted = FittedPower({FT: TRAIN, PT: TRAIN, ON: INFER}, caps={FT: _Resp()}, seed=5)
    jobs = (job("ft", 0, 3000, 4, FT, preemptible=True, checkpoint_interval_s=630),
            job("pt", 100, 2000, 2, PT), job("on", 200, 1500, 2, ON))
    r = Run(SMALL, Fifo(), fitted, jobs, cap=CapPolicy(318.15, 313.15, 400.0),
            thermal=lambda t: (320.0 if 1200 <= t < 1800 else 305.0, True), step_s=60).run(6000)
    c = r.c
    # uncapped jobs draw exactly what their runs say, on each of their GPUs
    pt = dataclasses.replace(TRAIN, ckpt_interval_s=math.inf, ckpt_duration_s=0.0)
    assert c.job_energy_J("pt") == pytest.approx(2 * pt.run(0.0, 2000.0, seed=fitted._run(jobs[1]).seed)
                                                 .energy_J(0.0, 2000.0), rel=ORACLE_RTOL)
    # the fine-tuning job's checkpoint dips end at its checkpoints (every 630 s of work)
    ft_run = fitted._run(jobs[0])
    assert ft_run.model.ckpt_interval_s + ft_run.model.ckpt_duration_s == 630.0
    # capped from 1200 s to 1800 s: x1.125 at 400 W, profile scaled by 400 / 500
    p_cap0, p_cap1 = 1200.0, 1200.0 + 600.0 / 1.125
    E_ft = 4 * (ft_run.energy_J(0.0, p_cap0) + 1.125 * 0.8 * ft_run.energy_J(p_cap0, p_cap1)
                + ft_run.energy_J(p_cap1, 3000.0))
    assert c.job_energy_J("ft") == pytest.approx(E_ft, rel=ORACLE_RTOL)
    total = c.energy_J(0, 6000).sum()
    booked = sum(c.job_energy_J(j.job_id) for j in jobs) + c.idle_energy_J()
    assert abs(booked - total) <= CONSERVATION_RTOL * total


# ------------------------------------------------------------------------------------------ bad inputs
def fresh(spec=SMALL, **kw):
    return Cluster(simpy.Environment(), spec, Fifo(), {"default": CONST}, ticks_per_s=TPS, **kw)


def test_bad_jobs_are_reported_together():
    c = fresh()
    with pytest.raises(TwinError) as e:
        c.submit([job("big", 0, 10, 9, PT), job("m", 0, 10, 1, PT, power_model="h100-fit"),
                  job("d", 0, 10, 1, PT), job("d", 5, 10, 1, PT)])
    msg = str(e.value)
    assert "3 bad job(s)" in msg
    assert "job 'big': needs 9 GPUs, the cluster has 8" in msg
    assert "job 'm': unknown power model 'h100-fit' (known: default)" in msg
    assert "job 'd': a job with this id was submitted already" in msg
    assert c.events == []  # nothing was submitted


def test_negative_and_past_times_are_errors():
    with pytest.raises(TwinError, match="submit_time_s: must be an integer >= 0, got -5"):
        job("neg", -5, 10, 1, PT)
    env = simpy.Environment(initial_time=100 * TPS)
    c = Cluster(env, SMALL, Fifo(), {"default": CONST}, ticks_per_s=TPS)
    with pytest.raises(TwinError, match="job 'old': submitted at 50 s, before now \\(100 s\\)"):
        c.submit([job("old", 50, 10, 1, PT)])
    with pytest.raises(TwinError, match="t0_s must be >= 0, got -1"):
        c.energy_J(-1, 100)
    with pytest.raises(TwinError, match="t0_s \\(100\\) is after t1_s \\(50\\)"):
        c.energy_J(100, 50)
    with pytest.raises(TwinError, match="160 s is none of them"):
        c.energy_J(100, 160)                      # the future
    with pytest.raises(TwinError, match="not a whole tick"):
        c.energy_J(100, 100.0004)
    with pytest.raises(TwinError, match="finite"):
        c.energy_J(math.nan, 100)


def test_energy_only_from_earlier_query_ends():
    r = Run(SMALL, Fifo(), CONST, [job("a", 0, 100, 1, PT)], step_s=60).run(180)
    assert r.c.energy_J(60, 180)[0] == pytest.approx(r.E[1][0] + r.E[2][0])
    with pytest.raises(TwinError, match="30 s is none of them"):
        r.c.energy_J(30, 180)


def test_bad_spec_cap_and_thermal_state():
    with pytest.raises(TwinError) as e:
        ClusterSpec(n_racks=0, nodes_per_rack=2, gpus_per_node=4.0, P_idle_W=50.0, P_max_W=600.0, f_liquid=0.8)
    assert "n_racks: must be an integer >= 1, got 0" in str(e.value) and "gpus_per_node" in str(e.value)
    with pytest.raises(TwinError, match="f_liquid: must be in \\[0, 1\\], got 1.5"):
        ClusterSpec(n_racks=1, nodes_per_rack=2, gpus_per_node=4, P_idle_W=50.0, P_max_W=600.0, f_liquid=1.5)
    with pytest.raises(TwinError, match="P_max_W: must be > P_idle_W"):
        ClusterSpec(n_racks=1, nodes_per_rack=2, gpus_per_node=4, P_idle_W=50.0, P_max_W=40.0, f_liquid=0.5)
    with pytest.raises(TwinError, match="T_release_K <= T_cap_K"):
        CapPolicy(T_cap_K=310.0, T_release_K=315.0, cap_W=300.0)
    with pytest.raises(TwinError, match="must be in \\(P_idle_W, P_max_W\\]"):
        fresh(cap=CapPolicy(T_cap_K=318.0, T_release_K=315.0, cap_W=900.0))
    c = fresh()
    with pytest.raises(TwinError, match="T_coolant_K must be a finite temperature"):
        c.set_thermal_state(-3.0, True)
    with pytest.raises(TwinError, match="can_reject_heat must be True or False"):
        c.set_thermal_state(300.0, "yes")
    with pytest.raises(TwinError, match="ticks_per_s must be an integer"):
        Cluster(simpy.Environment(), SMALL, Fifo(), {"default": CONST}, ticks_per_s=0.5)


def test_event_rows_for_the_events_file():
    r = Run(SMALL, Fifo(), CONST, [job("a", 0, 100, 1, PT)], cap=CAP,
            thermal=lambda t: (320.0, True), step_s=60).run(180)
    assert r.c.event_rows() == [
        {"time_s": 0.0, "kind": "submit", "source": "a", "detail": ""},
        {"time_s": 0.0, "kind": "start", "source": "a", "detail": "n0:1"},
        {"time_s": 60.0, "kind": "cap", "source": "cluster", "detail": "450W"},
        # a 500 W job at the 450 W cap runs 1 + 50/450 times longer: its last 40 s of work take 44.444.. s,
        # rounded up to the tick
        {"time_s": 104.445, "kind": "end", "source": "a", "detail": ""},
    ]


@pytest.mark.parametrize("cap_W", [700.0, 600.0, 450.0, 300.0, 200.0])
def test_fitted_models_follow_the_stand_ins_clip_rule_under_a_cap(cap_W):
    # a fitted training model without noise or checkpoints is the stand-in's square wave: the same stretch and
    # the same energy over any stretch of work, capped or not
    tp = TrainingPower(P_idle_W=60.0, P_high_W=640.0, P_low_W=330.0, duty=0.65, period_s=4.0)
    sq = SquareWavePower({FT: Wave(P_hi_W=640.0, P_lo_W=330.0, period_s=4.0, duty=0.65)},
                         Wave(P_hi_W=1.0, P_lo_W=1.0, period_s=1.0, duty=0.5))
    fitted = FittedPower({FT: tp})
    j = job("ft", 0, 4000, 1, FT)
    assert fitted.stretch(j, cap_W) == pytest.approx(sq.stretch(j, cap_W), rel=1e-12)
    for p0, p1 in ((0.0, 4000.0), (13.0, 101.5), (2.2, 3.9)):
        assert fitted.energy_J(j, p0, p1, cap_W) == pytest.approx(sq.energy_J(j, p0, p1, cap_W), rel=1e-12)
    # the mean power under the cap never exceeds it
    assert fitted.energy_J(j, 0.0, 4000.0, cap_W) / (4000.0 * fitted.stretch(j, cap_W)) <= cap_W * (1 + 1e-12)
    # a server is not lengthened; its levels are clipped
    on = job("on", 0, 4000, 1, ON)
    quiet = FittedPower({ON: dataclasses.replace(INFER, noise=Ar1Noise())})
    assert quiet.stretch(on, cap_W) == 1.0
    bp, b = INFER.busy_fractions()
    P_capped = bp * min(600.0, cap_W) + (b - bp) * min(380.0, cap_W) + (1 - b) * min(90.0, cap_W)
    E0 = quiet.energy_J(on, 0.0, 4000.0, None)
    assert quiet.energy_J(on, 0.0, 4000.0, cap_W) == pytest.approx(E0 * P_capped / INFER.mean_power_W(), rel=1e-12)


def test_under_a_cap_checkpoints_keep_their_speed():
    # TRAIN checkpoints for 30 s; a job checkpointing every 630 s of work trains 600 s of each 630
    fitted = FittedPower({FT: TRAIN})
    j = job("ft", 0, 3000, 1, FT, checkpoint_interval_s=630)
    assert fitted.stretch(j, 400.0) == pytest.approx(1.0 + 0.65 * 600.0 / 630.0 * (640.0 / 400.0 - 1.0), rel=1e-12)
    # a cap below the checkpoint level clips the dips as well
    assert fitted.energy_J(j, 0.0, 630.0, 100.0) < fitted.energy_J(j, 0.0, 630.0, 330.0)
