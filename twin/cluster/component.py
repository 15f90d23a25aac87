"""The GPU cluster as a component of a site: built from a scenario's [cluster] table, stepped by the engine.

Each plant step [t0, t1) it reports the exact IT energy the cluster drew (integrated over job events by
``Cluster.energy_J``), as the mean power ``P_IT_W`` and cumulative energies; after the plant step the engine hands
it the plant's coolant temperature and whether the plant can reject heat, which cap the GPUs from the next step on
(``Cluster.set_thermal_state``). It knows nothing of the plant: the engine routes those values.

Power models: the [cluster] table's ``power_models`` gives a fitted model file (``twin fit-power``) per workload
class, used through ``FittedPower`` (under a cap they follow the stand-in's clip rule: the compute phase at the
cap and slower, its energy per unit of work kept); the other classes run the stand-in ``SquareWavePower`` with
per-class levels typical of 700 W-class training GPUs (below).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .jobs import DEFAULT_POWER_MODEL, WorkloadClass
from .schedulers import EasyBackfill, Fifo, Signals, ThermalDispatch
from .sim import CapPolicy, Cluster, ClusterSpec, SquareWavePower, Wave

OUTPUTS = ("P_IT_W", "Q_liquid_W", "Q_air_W", "E_IT_J", "E_liquid_J", "E_air_J", "gpus_busy", "jobs_queued", "cap_W")
INPUTS = ("T_coolant_K", "can_reject_heat")
SCHEDULERS = ("fifo", "easy", "thermal")

# The stand-in power profile per workload class, W per GPU: compute / communication levels, period, duty.
STANDIN_WAVES = {
    WorkloadClass.PRETRAINING: Wave(P_hi_W=650.0, P_lo_W=380.0, period_s=2.0, duty=0.75),
    WorkloadClass.FINE_TUNING: Wave(P_hi_W=600.0, P_lo_W=350.0, period_s=1.5, duty=0.7),
    WorkloadClass.EVALUATION: Wave(P_hi_W=450.0, P_lo_W=250.0, period_s=1.0, duty=0.6),
    WorkloadClass.ONLINE_INFERENCE: Wave(P_hi_W=420.0, P_lo_W=220.0, period_s=1.0, duty=0.5),
    WorkloadClass.BATCH_INFERENCE: Wave(P_hi_W=550.0, P_lo_W=300.0, period_s=1.0, duty=0.7),
}
STANDIN_DEFAULT = Wave(P_hi_W=500.0, P_lo_W=250.0, period_s=1.0, duty=0.6)


def standin_power() -> SquareWavePower:
    return SquareWavePower(STANDIN_WAVES, STANDIN_DEFAULT)


@dataclass(frozen=True)
class ClusterConfig:
    spec: ClusterSpec
    jobs_path: Path
    scheduler: str
    cap: CapPolicy | None
    signal_refs: dict            # heat / price / carbon -> "inputs.NAME.column" (thermal dispatch)
    weights: dict                # w_heat, w_price, w_carbon
    max_defer_s: int
    power_models: dict = None    # workload class value -> fitted power model file (twin fit-power)


class ByClass:
    """Power model of a job by its workload class: the fitted model where the scenario gives one, the stand-in
    square wave for the other classes."""

    def __init__(self, fitted, fallback):
        self.fitted, self.fallback = fitted, fallback
        self.classes = set(fitted.models) if fitted is not None else set()

    def _m(self, job):
        return self.fitted if job.workload_class in self.classes else self.fallback

    def stretch(self, job, cap_W):
        return self._m(job).stretch(job, cap_W)

    def energy_J(self, job, p0_s, p1_s, cap_W):
        return self._m(job).energy_J(job, p0_s, p1_s, cap_W)


class ClusterComponent:
    """Site component ``cluster``. ``env()`` gives the engine's current SimPy environment (a restore makes a new
    one); ``signals`` are the hourly arrays of the thermal-dispatch signals from the run's start."""

    name = "cluster"
    outputs = list(OUTPUTS)

    def __init__(self, config: ClusterConfig, env, ticks_per_s: int, signals: dict[str, np.ndarray]):
        from .traces import read_jobs

        self.config = config
        self.seed = 0
        self._env = env
        self.tps = ticks_per_s
        self.jobs = read_jobs(config.jobs_path)
        self.signals = signals
        self.inputs: list[str] = []
        self.cluster: Cluster | None = None
        self._E = np.zeros(3)     # cumulative IT, liquid, air

    def _scheduler(self):
        c = self.config
        if c.scheduler == "fifo":
            return Fifo()
        if c.scheduler == "easy":
            return EasyBackfill()
        sig = Signals(heat=self.signals.get("heat"), price=self.signals.get("price"), carbon=self.signals.get("carbon"),
                      **c.weights)
        return ThermalDispatch(sig, max_defer_s=c.max_defer_s)

    def _power(self) -> dict:
        names = sorted({j.power_model for j in self.jobs} | {DEFAULT_POWER_MODEL, "square_wave"})  # a fixed order
        model = standin_power()
        if self.config.power_models:
            from .power import load_power_model
            from .sim import FittedPower

            fitted = FittedPower({WorkloadClass(c): load_power_model(p) for c, p in self.config.power_models.items()},
                                 seed=self.seed)
            model = ByClass(fitted, model)
        return {n: model for n in names}

    def _build(self) -> Cluster:
        return Cluster(self._env(), self.config.spec, self._scheduler(), self._power(), ticks_per_s=self.tps,
                       cap=self.config.cap)

    def setup(self, t_s: float) -> np.ndarray:
        self.cluster = self._build()
        self.cluster.submit(self.jobs)
        self._y = np.zeros(len(OUTPUTS))
        return self._y

    def stepper(self, z: np.ndarray, in_idx: np.ndarray, out_slice: slice):
        y, E = self._y, self._E

        def step(t_s: float, h_s: float) -> None:
            c = self.cluster
            liquid, air = c.heat_J(t_s, t_s + h_s)
            e_liq, e_air = float(liquid.sum()), float(air.sum())
            E[0] += e_liq + e_air
            E[1] += e_liq
            E[2] += e_air
            y[0] = (e_liq + e_air) / h_s
            y[1] = e_liq / h_s
            y[2] = e_air / h_s
            y[3:6] = E
            y[6] = c.spec.n_gpus - c.free_gpus
            y[7] = sum(1 for _ in c.iter_ready())
            y[8] = c.cap_W or 0.0
            z[out_slice] = y
        return step

    def post_step(self, values: np.ndarray) -> None:
        """After the plant step: the coolant temperature and whether heat can be rejected (inputs in order)."""
        T = float(values[0]) if len(values) > 0 else float("nan")
        can = bool(values[1] >= 0.5) if len(values) > 1 else True
        if T == T:  # not NaN
            self.cluster.set_thermal_state(T, can)

    def get_state(self):
        return {"cluster": self.cluster.get_state(), "E": self._E.tolist(), "y": self._y.tolist()}

    def set_state(self, s) -> None:
        self.cluster = self._build()        # in the engine's new environment, at the checkpoint's tick
        self.cluster.set_state(s["cluster"])
        self._E[:] = s["E"]
        self._y[:] = s["y"]

    def event_rows(self) -> list[dict]:
        return self.cluster.event_rows() if self.cluster is not None else []

    def close(self) -> None:
        pass
