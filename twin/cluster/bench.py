"""Benchmark of the cluster simulator (never a timed test): 10 000 jobs on 1 024 GPUs over 30 simulated days,
the rack energies queried every 60 s like the engine does (43 200 queries) and the thermal state set after each.

The workload is synthetic and seeded: six classes with their own sizes, durations, checkpoints and deadlines,
arrivals uniform over the period, durations scaled so that the jobs ask for ``load`` of the GPU-seconds. The
power model is the square-wave stand-in (``SquareWavePower``); the coolant warms on a daily cycle above the cap
threshold for a few hours a day, and the plant cannot reject heat for three hours every fourth day.
"""
from __future__ import annotations

import math
import statistics
import time

import numpy as np
import simpy

from .jobs import Job, WorkloadClass
from .schedulers import EasyBackfill, Fifo, Signals, ThermalDispatch
from .sim import CapPolicy, Cluster, ClusterSpec, FittedPower, SquareWavePower, Wave

TICKS_PER_S = 1000  # the engine's tick (twin.engine.TICKS_PER_S; the cluster does not import the engine)
DAY_S = 86_400
W = WorkloadClass

# class: (share of jobs, GPU counts, their weights, median duration s, sigma of log duration, preemptible,
#         checkpoint interval s, deadline factor)
_MIX = {
    W.ONLINE_INFERENCE: (0.30, (1, 2, 4, 8), (0.4, 0.3, 0.2, 0.1), 1800, 0.5, False, None, None),
    W.PRETRAINING: (0.03, (16, 32, 64), (0.5, 0.35, 0.15), 40_000, 0.6, False, 3600, None),
    W.FINE_TUNING: (0.25, (1, 2, 4, 8), (0.2, 0.3, 0.3, 0.2), 10_000, 0.8, True, 1800, 3.0),
    W.EVALUATION: (0.15, (1, 2, 4), (0.5, 0.3, 0.2), 2400, 0.7, False, None, 4.0),
    W.BATCH_INFERENCE: (0.20, (1, 2, 4, 8), (0.3, 0.3, 0.2, 0.2), 7200, 0.7, True, 1800, 3.0),
    W.OTHER: (0.07, (1, 2), (0.6, 0.4), 3600, 0.8, False, None, None),
}

_WAVES = {
    W.PRETRAINING: Wave(P_hi_W=690.0, P_lo_W=380.0, period_s=7.3, duty=0.7),
    W.FINE_TUNING: Wave(P_hi_W=640.0, P_lo_W=350.0, period_s=4.1, duty=0.65),
    W.ONLINE_INFERENCE: Wave(P_hi_W=450.0, P_lo_W=250.0, period_s=1.7, duty=0.5),
    W.BATCH_INFERENCE: Wave(P_hi_W=560.0, P_lo_W=300.0, period_s=2.3, duty=0.6),
    W.EVALUATION: Wave(P_hi_W=520.0, P_lo_W=300.0, period_s=3.1, duty=0.5),
}


def bench_jobs(n_jobs: int = 10_000, n_gpus: int = 1024, days: int = 30, load: float = 0.7,
               seed: int = 0) -> tuple[Job, ...]:
    """The benchmark's synthetic jobs (seeded)."""
    rng = np.random.default_rng(seed)
    classes = list(_MIX)
    share = np.array([_MIX[c][0] for c in classes])
    cls = rng.choice(len(classes), size=n_jobs, p=share / share.sum())
    span_s = days * DAY_S
    submit = np.sort(rng.integers(0, span_s, size=n_jobs))
    gpus = np.zeros(n_jobs, dtype=np.int64)
    dur = np.zeros(n_jobs)
    for k, c in enumerate(classes):
        idx = np.flatnonzero(cls == k)
        _, sizes, w, median, sig, *_ = _MIX[c]
        gpus[idx] = rng.choice(np.array(sizes), size=idx.size, p=np.array(w) / sum(w))
        dur[idx] = median * np.exp(sig * rng.standard_normal(idx.size))
    online = cls == classes.index(W.ONLINE_INFERENCE)
    scale = load * n_gpus * span_s / float(np.sum(gpus * dur))
    dur[~online] *= scale  # inference windows keep their length
    dur = np.maximum(1, np.rint(dur)).astype(np.int64)
    jobs = []
    for i in range(n_jobs):
        c = classes[cls[i]]
        _, _, _, _, _, pre, ci, f = _MIX[c]
        s, d = int(submit[i]), int(dur[i])
        jobs.append(Job(job_id=f"b{i}", submit_time_s=s, duration_s=d, n_gpus=int(gpus[i]), workload_class=c,
                        preemptible=pre, checkpoint_interval_s=ci if ci is None or ci < d else None,
                        deadline_s=None if f is None else s + math.ceil(f * d)))
    return tuple(jobs)


def fitted_power(noise_dt_s: float = 10.0) -> FittedPower:
    """The fitted models' form (``twin.cluster.power``) with plausible parameters, through the adapter: training
    square waves with checkpoint dips, an inference server, AR(1) noise on cells of ``noise_dt_s``."""
    from .power import Ar1Noise, InferencePower, TrainingPower

    noise = Ar1Noise(sigma_W=15.0, tau_s=2.0, dt_s=noise_dt_s)
    models = {c: TrainingPower(P_idle_W=60.0, P_high_W=w.P_hi_W, P_low_W=w.P_lo_W, duty=w.duty, period_s=w.period_s,
                               P_ckpt_W=150.0, ckpt_interval_s=1770.0, ckpt_duration_s=30.0, noise=noise)
              for c, w in _WAVES.items() if c is not W.ONLINE_INFERENCE}
    models[W.OTHER] = models[W.EVALUATION]
    models[W.ONLINE_INFERENCE] = InferencePower(P_idle_W=60.0, P_wait_W=90.0, P_prefill_W=600.0, P_decode_W=380.0,
                                                prefill_s=0.4, decode_s=3.0, rate_per_s=0.2, noise=noise)
    return FittedPower(models, seed=1)


def bench_signals(days: int = 30) -> Signals:
    """Hourly heat demand (high at night and in the morning), price (evening peak) and carbon (midday solar dip)."""
    h = np.arange(days * 24 + 48)
    hod = h % 24
    heat = 1.0 + 0.4 * np.cos(2 * np.pi * (hod - 6) / 24)
    price = 80 + 40 * np.exp(-0.5 * ((hod - 19) / 2.0) ** 2) - 20 * np.exp(-0.5 * ((hod - 13) / 2.5) ** 2)
    carbon = 400 - 150 * np.exp(-0.5 * ((hod - 13) / 3.0) ** 2)
    return Signals(heat=heat, price=price, carbon=carbon, w_heat=1.0, w_price=1.0, w_carbon=0.5)


def _scheduler(name: str, days: int):
    if name == "fifo":
        return Fifo()
    if name == "easy":
        return EasyBackfill()
    if name == "thermal":
        return ThermalDispatch(bench_signals(days), max_defer_s=12 * 3600)
    raise ValueError(f"unknown scheduler {name!r}: fifo, easy or thermal")


def run_once(jobs: tuple[Job, ...], scheduler: str = "thermal", n_racks: int = 8, days: int = 30,
             query_s: int = 60, power: str = "waves") -> dict:
    """One run: build the cluster, submit the jobs, run ``days`` with a query every ``query_s``. ``power``:
    "waves" (the vectorised stand-in) or "fitted" (the fitted models' form through ``FittedPower``, one call per
    running job per query). Returns the wall seconds and a few figures of the run."""
    t0 = time.perf_counter()
    env = simpy.Environment()
    spec = ClusterSpec(n_racks=n_racks, nodes_per_rack=16, gpus_per_node=8, P_idle_W=60.0, P_max_W=700.0,
                       f_liquid=0.85)
    if power == "waves":
        model = SquareWavePower(_WAVES, default=Wave(P_hi_W=500.0, P_lo_W=300.0, period_s=5.0, duty=0.5))
    elif power == "fitted":
        model = fitted_power()
    else:
        raise ValueError(f"unknown power {power!r}: waves or fitted")
    cap = CapPolicy(T_cap_K=318.15, T_release_K=316.15, cap_W=450.0)
    c = Cluster(env, spec, _scheduler(scheduler, days), {"default": model}, ticks_per_s=TICKS_PER_S, cap=cap)
    c.submit(jobs)
    h = query_s * TICKS_PER_S
    n = days * DAY_S // query_s
    total = np.zeros(n_racks)

    def plant():
        for k in range(n):
            yield env.timeout(h)
            t_s = (k * h) / TICKS_PER_S
            total[:] += c.energy_J(t_s, ((k + 1) * h) / TICKS_PER_S)
            tod = ((k + 1) * query_s) % DAY_S
            T = 312.15 + 7.0 * math.sin(2 * math.pi * (tod - 8 * 3600) / DAY_S)
            reject = not ((k + 1) * query_s // DAY_S % 4 == 3 and 10 * 3600 <= tod < 13 * 3600)
            c.set_thermal_state(T, reject)

    env.run(until=env.process(plant()))
    wall = time.perf_counter() - t0
    sl = c.service_levels()
    E = float(total.sum())
    booked = sum(c.job_energy_J(j.job_id) for j in jobs) + c.idle_energy_J()
    return {"wall_s": wall, "queries": n, "events": len(c.events), "E_MWh": E / 3.6e9,
            "conservation_rel": abs(booked - E) / E, "service": sl}


def bench_cluster(scheduler: str = "thermal", repeats: int = 3, seed: int = 0, power: str = "waves") -> dict:
    """Median wall seconds of ``repeats`` runs of the 10 000-job, 1 024-GPU, 30-day benchmark."""
    jobs = bench_jobs(seed=seed)
    runs = [run_once(jobs, scheduler, power=power) for _ in range(repeats)]
    out = dict(runs[0])
    out["wall_s"] = statistics.median(r["wall_s"] for r in runs)
    out["samples_s"] = [r["wall_s"] for r in runs]
    return out


if __name__ == "__main__":
    for name in ("fifo", "easy", "thermal"):
        r = bench_cluster(name)
        print(f"{name:8s} median {r['wall_s']:.2f} s  samples {['%.2f' % s for s in r['samples_s']]}  "
              f"events {r['events']}  E {r['E_MWh']:.1f} MWh  conservation {r['conservation_rel']:.1e}")
        print("         ", r["service"])
