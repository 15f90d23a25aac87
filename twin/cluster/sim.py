"""The GPU cluster simulator: racks of nodes of GPUs, a job queue, a scheduler, power models and heat capture,
event-driven on a SimPy environment whose time is an integer count of ticks.

What is modelled
- Nodes of ``gpus_per_node`` GPUs in racks. A job occupies ``n_gpus`` whole GPUs (placement: the fullest node
  that holds the whole job, else the emptiest nodes first). Idle GPUs draw ``P_idle_W``; a running job's GPUs draw
  what its power model says. All electrical power becomes heat: ``f_liquid`` of it goes to the rack coolant,
  the rest to room air.
- A job's power is a function of its *progress* p (nominal seconds of work done, 0..duration_s): a cap slows
  progress by the power model's stretch (wall time = stretch x work) and changes the draw. A run is a sequence
  of segments of constant cap; the energy of a segment is the model's exact integral over its progress span.
- Checkpoints at progress k * checkpoint_interval_s. Preemption (a scheduler decision) rolls a job back to its
  last checkpoint (to zero without an interval); the work since is lost and counted.
- Caps: a ``CapPolicy`` reads the coolant temperature and whether the plant can reject heat
  (``set_thermal_state``, between plant steps) and caps every GPU, with hysteresis.

Time and order. Every time is an integer tick (``ticks_per_s`` per second); seconds are computed from ticks.
Job submissions, releases (earliest start, end of a hold), ends and checkpoints sit on one agenda ordered by
(tick, kind, submit order); a SimPy timeout wakes the cluster at the agenda's next tick. All items of a tick are
handled in that order (ends, checkpoints, submissions, releases), then the scheduler plans once. Public calls
first catch up with every item due at ``env.now``, so the order of SimPy processes inside a tick never matters,
and a restored cluster continues exactly as the uninterrupted one.

Energy. ``energy_J(t0_s, t1_s)`` is the exact integral per rack (closed segments, open segments integrated by
the power model, idle GPUs), from cumulative sums kept at the ends of earlier queries ("marks"): t1 must be
now (or a mark) and t0 a mark. The engine calls it at the end of each step [t, t+h).

Power models (``PowerModel``; one per ``Job.power_model`` name) must be pure functions of the job, its progress
and the cap (the cluster itself draws no random numbers). A model with ``params``/``energy_batch_J`` is
integrated for all running jobs in one vectorised call per query; others are called job by job. Here:
``FittedPower`` adapts the fitted models of ``twin.cluster.power`` and ``twin.cluster.powercap`` (job by job);
``ConstantPower`` and ``SquareWavePower`` are simple vectorised stand-ins (tests, benchmarks).
"""
from __future__ import annotations

import bisect
import heapq
import math
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import TwinError
from .jobs import Job, WorkloadClass

MAX_MARKS = 4096
"""How many query ends the cluster remembers for ``energy_J`` (oldest forgotten first)."""

_EPS_TICKS = 1e-6  # a duration of x ticks (float) becomes ceil(x - _EPS_TICKS) ticks: float noise is not a tick
_END, _CKPT, _SUBMIT, _RELEASE = range(4)  # agenda kinds, in their order within one tick
PENDING, QUEUED, RUNNING, DONE = "pending", "queued", "running", "done"
EVENT_KINDS = ("submit", "start", "end", "preempt", "checkpoint", "cap", "uncap", "defer")


class Event(NamedTuple):
    """One record of the event log. ``job_id`` is "" for cluster-wide events (cap, uncap)."""

    t_s: float
    kind: str
    job_id: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class ClusterSpec:
    """The hardware: ``n_racks`` x ``nodes_per_rack`` x ``gpus_per_node`` GPUs."""

    n_racks: int
    nodes_per_rack: int
    gpus_per_node: int
    P_idle_W: float      # draw of a GPU that runs no job
    P_max_W: float       # TDP: the highest cap
    f_liquid: float      # share of the heat that goes to the rack coolant; the rest goes to room air

    def __post_init__(self):
        problems = []
        for name in ("n_racks", "nodes_per_rack", "gpus_per_node"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                problems.append(f"{name}: must be an integer >= 1, got {v!r}")
        for name in ("P_idle_W", "P_max_W", "f_liquid"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
                problems.append(f"{name}: must be a finite number, got {v!r}")
        if not problems:
            if self.P_idle_W < 0:
                problems.append(f"P_idle_W: must be >= 0, got {self.P_idle_W}")
            if self.P_max_W <= self.P_idle_W:
                problems.append(f"P_max_W: must be > P_idle_W ({self.P_idle_W}), got {self.P_max_W}")
            if not 0.0 <= self.f_liquid <= 1.0:
                problems.append(f"f_liquid: must be in [0, 1], got {self.f_liquid}")
        if problems:
            raise TwinError("cluster spec: " + "; ".join(problems))

    @property
    def n_nodes(self) -> int:
        return self.n_racks * self.nodes_per_rack

    @property
    def gpus_per_rack(self) -> int:
        return self.nodes_per_rack * self.gpus_per_node

    @property
    def n_gpus(self) -> int:
        return self.n_racks * self.gpus_per_rack


@dataclass(frozen=True)
class CapPolicy:
    """Cap every GPU at ``cap_W`` while the coolant is at or above ``T_cap_K`` or the plant cannot reject heat;
    lift the cap once the coolant is below ``T_release_K`` (<= T_cap_K: hysteresis) and heat can be rejected."""

    T_cap_K: float
    T_release_K: float
    cap_W: float

    def __post_init__(self):
        vals = (self.T_cap_K, self.T_release_K, self.cap_W)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            raise TwinError(f"cap policy: T_cap_K, T_release_K, cap_W must be finite numbers, got {vals}")
        if not (0 < self.T_release_K <= self.T_cap_K):
            raise TwinError(f"cap policy: need 0 < T_release_K <= T_cap_K, got {self.T_release_K}, {self.T_cap_K}")
        if self.cap_W <= 0:
            raise TwinError(f"cap policy: cap_W must be > 0, got {self.cap_W}")

    def capped(self, T_coolant_K: float, can_reject_heat: bool, capped_now: bool) -> bool:
        if not can_reject_heat or T_coolant_K >= self.T_cap_K:
            return True
        return capped_now and T_coolant_K >= self.T_release_K


@dataclass(frozen=True)
class Plan:
    """A scheduler's decisions at one tick, applied in this order: preempt, hold, start, wake.

    ``hold``: (job id, until tick, reason); the job is not started before that tick (until = now clears a hold).
    ``start``: job ids, placed in this order; each must fit in the GPUs free at that point.
    """

    start: tuple[str, ...] = ()
    preempt: tuple[str, ...] = ()
    hold: tuple[tuple[str, int, str], ...] = ()
    wake: tuple[tuple[str, int], ...] = ()   # (job id, tick): plan again at that tick (e.g. a job's latest start)


@dataclass(frozen=True)
class ServiceLevels:
    """Job service levels up to now. Waits run from a job's earliest start to its first start; NaN if none
    started. Throttled: GPU-hours run under a cap that slows the job (stretch > 1). Lost work: nominal
    GPU-hours of progress thrown away by preemptions."""

    n_jobs: int
    n_started: int
    n_finished: int
    wait_p50_s: float
    wait_p95_s: float
    deadline_misses: int
    n_preemptions: int
    throttled_gpu_h: float
    lost_work_gpu_h: float


# ---------------------------------------------------------------------------------------------- power models
@runtime_checkable
class PowerModel(Protocol):
    """The draw of each GPU of a running job, as a function of the job's progress p (nominal seconds of work).

    ``stretch(job, cap_W)``: wall seconds per second of work at a cap (None: uncapped), >= 1.
    ``energy_J(job, p0_s, p1_s, cap_W)``: exact energy (J) drawn by ONE of the job's GPUs while its progress
    runs from p0_s to p1_s at a constant cap (that takes stretch * (p1_s - p0_s) wall seconds).
    Optional, for speed: ``params(job, cap_W) -> tuple of floats`` (the same length for every job of the model)
    and ``energy_batch_J(params, p0_s, p1_s) -> array``, the same integral for many jobs at once.
    """

    def stretch(self, job: Job, cap_W: float | None) -> float: ...

    def energy_J(self, job: Job, p0_s: float, p1_s: float, cap_W: float | None) -> float: ...


@dataclass(frozen=True)
class ConstantPower:
    """Stand-in power model: each GPU of a job of class c draws ``P_W[c]`` (``default_W`` for classes not
    listed), whatever its progress. Under a cap below that draw it draws the cap and runs
    ``1 + beta * (P - cap) / cap`` times longer (beta = 1: the job's energy is unchanged by the cap)."""

    P_W: Mapping[WorkloadClass, float]
    default_W: float
    beta: float = 1.0

    def level_W(self, job: Job) -> float:
        return float(self.P_W.get(job.workload_class, self.default_W))

    def stretch(self, job: Job, cap_W: float | None) -> float:
        P = self.level_W(job)
        if cap_W is None or cap_W >= P:
            return 1.0
        return 1.0 + self.beta * (P - cap_W) / cap_W

    def energy_J(self, job: Job, p0_s: float, p1_s: float, cap_W: float | None) -> float:
        P = self.level_W(job)
        return (P if cap_W is None else min(P, cap_W)) * self.stretch(job, cap_W) * (p1_s - p0_s)

    def params(self, job: Job, cap_W: float | None) -> tuple[float, ...]:
        P = self.level_W(job)
        return ((P if cap_W is None else min(P, cap_W)) * self.stretch(job, cap_W),)

    def energy_batch_J(self, params: np.ndarray, p0_s: np.ndarray, p1_s: np.ndarray) -> np.ndarray:
        return params[:, 0] * (p1_s - p0_s)


@dataclass(frozen=True)
class Wave:
    """A square wave of GPU power over progress: ``P_hi_W`` for the first ``duty`` of each ``period_s`` of work
    (compute), ``P_lo_W`` for the rest (communication)."""

    P_hi_W: float
    P_lo_W: float
    period_s: float
    duty: float

    def __post_init__(self):
        if not (self.period_s > 0 and 0 < self.duty < 1 and 0 <= self.P_lo_W <= self.P_hi_W):
            raise TwinError(f"wave: need period_s > 0, 0 < duty < 1, 0 <= P_lo_W <= P_hi_W, got {self}")


@dataclass(frozen=True)
class SquareWavePower:
    """Stand-in periodic power model (until the fitted models of ``twin.cluster.power`` are plugged in): each
    class has a ``Wave`` over progress. A cap clips both levels; the compute part of each period slows by
    P_hi / min(P_hi, cap) (its energy unchanged), the communication part keeps its speed. The integral is exact
    and O(1) per job: whole periods times the energy of one, plus the part of the last one."""

    waves: Mapping[WorkloadClass, Wave]
    default: Wave

    def _wave(self, job: Job) -> Wave:
        return self.waves.get(job.workload_class, self.default)

    def stretch(self, job: Job, cap_W: float | None) -> float:
        w = self._wave(job)
        if cap_W is None or cap_W >= w.P_hi_W:
            return 1.0
        return 1.0 + w.duty * (w.P_hi_W / cap_W - 1.0)

    def params(self, job: Job, cap_W: float | None) -> tuple[float, ...]:
        w = self._wave(job)
        lo = w.P_lo_W if cap_W is None else min(w.P_lo_W, cap_W)
        # energy per second of progress: compute phase P_hi (power clipped, time stretched), communication lo
        return (w.period_s, w.duty * w.period_s, w.P_hi_W, lo)

    def energy_batch_J(self, params: np.ndarray, p0_s: np.ndarray, p1_s: np.ndarray) -> np.ndarray:
        period, on, hi, lo = params[:, 0], params[:, 1], params[:, 2], params[:, 3]
        per_period = hi * on + lo * (period - on)

        def cum(p):
            n = np.floor(p / period)
            r = p - n * period
            return n * per_period + hi * np.minimum(r, on) + lo * np.maximum(r - on, 0.0)

        return cum(p1_s) - cum(p0_s)

    def energy_J(self, job: Job, p0_s: float, p1_s: float, cap_W: float | None) -> float:
        prm = np.array([self.params(job, cap_W)])
        return float(self.energy_batch_J(prm, np.array([p0_s]), np.array([p1_s]))[0])


@dataclass(frozen=True, eq=False)
class FittedPower:
    """Adapter for the fitted models of ``twin.cluster.power`` (``TrainingPower``, ``InferencePower``: one per
    workload class) and their power-cap responses (``twin.cluster.powercap.CapResponse``), as a ``PowerModel``.

    A job's GPUs all run ``model.run(0, duration_s, seed)`` in progress time (a job's seed: CRC-32 of its id
    plus ``seed``). A training model's checkpoint dips are aligned with the job's checkpoints (a dip ends at
    each multiple of ``checkpoint_interval_s``; none without an interval). Under a cap c the profile is scaled
    by ``response.power_W(c) / response.P_inf_W`` and the job runs ``response.stretch(c)`` times longer, for a
    class with a measured response (``caps``); any other class follows the clip rule of its model
    (``cap_stretch``, ``cap_energy_ratio``: the rule of the stand-in ``SquareWavePower``). Exact, but one call
    per running job per query (no batch form).
    """

    models: Mapping[WorkloadClass, object]
    caps: Mapping[WorkloadClass, object] = None
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "caps", dict(self.caps or {}))
        object.__setattr__(self, "_runs", OrderedDict())

    def _model(self, job: Job):
        try:
            return self.models[job.workload_class]
        except KeyError:
            raise TwinError(f"fitted power: no model for class {job.workload_class.value!r} "
                            f"(job {job.job_id!r})") from None

    def _run(self, job: Job, low_cap_W: float | None = None):
        """The job's run; with ``low_cap_W``, the same run (phases, checkpoints, noise) with its low level
        clipped at that cap."""
        runs = self._runs
        key = job if low_cap_W is None else (job, low_cap_W)
        r = runs.get(key)
        if r is None:
            import dataclasses
            import zlib

            m = self._model(job)
            if low_cap_W is not None:
                m = dataclasses.replace(m, P_low_W=min(m.P_low_W, low_cap_W), P_ckpt_W=min(m.P_ckpt_W, low_cap_W))
            if getattr(m, "kind", "") == "training":
                ci = job.checkpoint_interval_s
                if ci is None or not m.has_checkpoints:
                    m = dataclasses.replace(m, ckpt_interval_s=math.inf, ckpt_duration_s=0.0)
                elif ci <= m.ckpt_duration_s:
                    raise TwinError(f"fitted power: job {job.job_id!r} checkpoints every {ci} s, not longer than "
                                    f"the model's checkpoint ({m.ckpt_duration_s} s)")
                else:
                    m = dataclasses.replace(m, ckpt_interval_s=ci - m.ckpt_duration_s)
            seed = (zlib.crc32(job.job_id.encode()) + self.seed) % 2 ** 63
            r = m.run(0.0, float(job.duration_s), seed=seed)
            runs[key] = r
            if len(runs) > 4096:
                runs.popitem(last=False)
        return r

    def stretch(self, job: Job, cap_W: float | None) -> float:
        if cap_W is None:
            return 1.0
        resp = self.caps.get(job.workload_class)
        if resp is None:
            return self._run(job).model.cap_stretch(cap_W)    # the job's model: checkpoints at its own interval
        return max(1.0, float(resp.stretch(cap_W)))

    def energy_J(self, job: Job, p0_s: float, p1_s: float, cap_W: float | None) -> float:
        E = self._run(job).energy_J(p0_s, p1_s)
        if cap_W is None:
            return E
        resp = self.caps.get(job.workload_class)
        if resp is not None:
            return E * float(resp.power_W(cap_W)) / resp.P_inf_W * self.stretch(job, cap_W)
        m = self._model(job)
        if getattr(m, "kind", "") == "training":    # exact: the compute phase's energy per work is kept
            if cap_W >= max(m.P_low_W, m.P_ckpt_W):
                return E
            return self._run(job, low_cap_W=cap_W).energy_J(p0_s, p1_s)
        return E * m.cap_energy_ratio(cap_W)


# ---------------------------------------------------------------------------------------------- job state
class JobState:
    """The cluster's record of one job (read-only outside the cluster).

    ``p_s``: progress at the start of the current segment (running) or to resume from (queued);
    ``ckpt_p_s``: progress of its last checkpoint; ``hold_tick``: not started before this (None: not planned);
    ``sigma_w``: its worst stretch (at the cap policy's cap).
    """

    __slots__ = ("job", "seq", "status", "p_s", "seg_tick", "sigma", "cap_W", "epoch", "ckpt_p_s", "ckpt_k",
                 "sigma_w", "release_tick", "first_start_tick", "end_tick", "done_tick", "hold_tick", "hold_reason",
                 "E_J", "lost_s", "throttled_gpu_s", "n_preempt", "alloc", "rack_gpus", "slot", "q_p_s", "q_E_J")

    def __init__(self, job: Job, seq: int):
        self.job = job
        self.seq = seq
        self.status = PENDING
        self.p_s = 0.0
        self.seg_tick = -1
        self.sigma = 1.0
        self.cap_W: float | None = None
        self.epoch = 0
        self.ckpt_p_s = 0.0
        self.ckpt_k = 0
        self.sigma_w = 1.0
        self.release_tick = -1
        self.first_start_tick: int | None = None
        self.end_tick = -1
        self.done_tick: int | None = None
        self.hold_tick: int | None = None
        self.hold_reason = ""
        self.E_J = 0.0
        self.lost_s = 0.0
        self.throttled_gpu_s = 0.0
        self.n_preempt = 0
        self.alloc: tuple[tuple[int, int], ...] = ()
        self.rack_gpus: np.ndarray | None = None
        self.slot = -1
        # the open segment's energy per GPU from p_s up to progress q_p_s (models without a batch form: each
        # plant step then integrates only its own stretch of work, whatever the segment's length)
        self.q_p_s = math.nan
        self.q_E_J = 0.0

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, s):
        self.q_p_s, self.q_E_J = math.nan, 0.0
        for k, v in s.items():
            setattr(self, k, v)


class _Group:
    """The running jobs of one power model, as arrays (one row per job) for the vectorised integral."""

    def __init__(self, model, n_racks: int, capacity: int):
        self.model = model
        self.batch = hasattr(model, "energy_batch_J") and hasattr(model, "params")
        self.recs: list[JobState] = []
        self.cap = capacity
        self.n_racks = n_racks
        self.p0 = np.zeros(capacity)
        self.seg = np.zeros(capacity)     # segment start tick
        self.den = np.ones(capacity)      # sigma * ticks_per_s: ticks per second of progress
        self.W = np.zeros((capacity, n_racks))
        self.params: np.ndarray | None = None

    def add(self, rec: JobState, den: float) -> None:
        i = len(self.recs)
        rec.slot = i
        self.recs.append(rec)
        self.p0[i] = rec.p_s
        self.seg[i] = rec.seg_tick
        self.den[i] = den
        self.W[i] = rec.rack_gpus
        if self.batch:
            prm = self.model.params(rec.job, rec.cap_W)
            if self.params is None:
                self.params = np.zeros((self.cap, len(prm)))
            self.params[i] = prm

    def remove(self, rec: JobState) -> None:
        i, last = rec.slot, len(self.recs) - 1
        if i != last:
            moved = self.recs[last]
            self.recs[i] = moved
            moved.slot = i
            self.p0[i], self.seg[i], self.den[i] = self.p0[last], self.seg[last], self.den[last]
            self.W[i] = self.W[last]
            if self.params is not None:
                self.params[i] = self.params[last]
        self.recs.pop()
        rec.slot = -1

    def energy_gpu_J(self, rec: JobState, p1_s: float) -> float:
        """Energy per GPU of ``rec``'s open segment up to progress p1_s."""
        if self.batch:
            i = rec.slot
            return float(self.model.energy_batch_J(self.params[i:i + 1], self.p0[i:i + 1], np.array([p1_s]))[0])
        q = rec.q_p_s
        if rec.p_s <= q <= p1_s:
            return rec.q_E_J + float(self.model.energy_J(rec.job, q, p1_s, rec.cap_W))
        return float(self.model.energy_J(rec.job, rec.p_s, p1_s, rec.cap_W))

    def open_J(self, tick: int) -> np.ndarray:
        """Energy per rack of the open segments from their starts up to ``tick``."""
        n = len(self.recs)
        if n == 0:
            return np.zeros(self.n_racks)
        p0 = self.p0[:n]
        p1 = p0 + (tick - self.seg[:n]) / self.den[:n]
        if self.batch:
            e = self.model.energy_batch_J(self.params[:n], p0, p1)
        else:
            e = np.array([self.energy_gpu_J(r, q) for r, q in zip(self.recs, p1.tolist())])
            for r, q, eq in zip(self.recs, p1.tolist(), e.tolist()):
                r.q_p_s, r.q_E_J = q, eq
        return e @ self.W[:n]


def _ticks(x: float) -> int:
    """A duration of x ticks (float, > 0) as whole ticks, at least 1."""
    return max(1, math.ceil(x - _EPS_TICKS))


# ---------------------------------------------------------------------------------------------- the cluster
class Cluster:
    """A GPU cluster in a SimPy environment ``env`` whose time is integer ticks.

    ``scheduler.plan(cluster) -> Plan`` is asked after the events of each tick; ``power`` maps each power-model
    name used by the jobs to its ``PowerModel``; ``cap`` is the cap policy (None: never capped).
    """

    def __init__(self, env, spec: ClusterSpec, scheduler, power: Mapping[str, PowerModel], *,
                 ticks_per_s: int, cap: CapPolicy | None = None):
        if not (isinstance(ticks_per_s, int) and ticks_per_s >= 1):
            raise TwinError(f"cluster: ticks_per_s must be an integer >= 1, got {ticks_per_s!r}")
        if not isinstance(env.now, int):
            raise TwinError(f"cluster: the environment's time must be an integer tick, got {env.now!r}")
        if not power:
            raise TwinError("cluster: no power model given")
        for name, m in power.items():
            if not isinstance(m, PowerModel):
                raise TwinError(f"cluster: power model {name!r} has no stretch/energy_J methods: {m!r}")
        if cap is not None and not (spec.P_idle_W < cap.cap_W <= spec.P_max_W):
            raise TwinError(f"cluster: the cap {cap.cap_W} W must be in (P_idle_W, P_max_W] = "
                            f"({spec.P_idle_W}, {spec.P_max_W}]")
        self.env = env
        self.spec = spec
        self.scheduler = scheduler
        self.power = dict(power)
        self.cap_policy = cap
        self.tps = ticks_per_s
        self._groups = {name: _Group(m, spec.n_racks, spec.n_gpus) for name, m in self.power.items()}
        self._reset(env.now)

    def _reset(self, tick: int) -> None:
        spec = self.spec
        self.now_tick = tick
        self.free_gpus = spec.n_gpus
        self._node_free = [spec.gpus_per_node] * spec.n_nodes
        self._busy = np.zeros(spec.n_racks)
        self._idle_E = np.zeros(spec.n_racks)
        self._idle_tick = tick
        self._closed_E = np.zeros(spec.n_racks)
        self._jobs: dict[str, JobState] = {}
        self._by_seq: list[JobState] = []
        self._ready: list[int] = []          # seqs of queued jobs, sorted
        self._agenda: list[tuple[int, int, int, int]] = []  # (tick, kind, seq, epoch)
        self._log: list[Event] = []
        self._marks: OrderedDict[int, np.ndarray] = OrderedDict({tick: np.zeros(spec.n_racks)})
        self.T_coolant_K = math.nan
        self.can_reject_heat = True
        self.cap_W: float | None = None
        self._armed: set[int] = set()
        self._wakes: set[tuple[int, int]] = set()   # (seq, tick) wake-ups already on the agenda

    # ------------------------------------------------------------------------------------------ inputs
    def submit(self, jobs: Iterable[Job]) -> None:
        """Add jobs (each submitted at its ``submit_time_s``, not before now). Every bad job is reported at once."""
        self._advance()
        jobs = list(jobs)
        problems = []
        seen = set()
        for j in jobs:
            if not isinstance(j, Job):
                problems.append(f"{j!r}: not a Job")
                continue
            if j.job_id in self._jobs or j.job_id in seen:
                problems.append(f"job {j.job_id!r}: a job with this id was submitted already")
            seen.add(j.job_id)
            if j.n_gpus > self.spec.n_gpus:
                problems.append(f"job {j.job_id!r}: needs {j.n_gpus} GPUs, the cluster has {self.spec.n_gpus}")
            if j.submit_time_s * self.tps < self.now_tick:
                problems.append(f"job {j.job_id!r}: submitted at {j.submit_time_s} s, before now "
                                f"({self.now_tick / self.tps:g} s)")
            if j.power_model not in self.power:
                problems.append(f"job {j.job_id!r}: unknown power model {j.power_model!r} "
                                f"(known: {', '.join(sorted(self.power))})")
        if problems:
            raise TwinError(f"cluster: {len(problems)} bad job(s): " + "; ".join(problems))
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i].submit_time_s, i))
        for i in order:
            j = jobs[i]
            rec = JobState(j, len(self._by_seq))
            rec.sigma_w = self.worst_stretch(j)
            self._by_seq.append(rec)
            self._jobs[j.job_id] = rec
            heapq.heappush(self._agenda, (j.submit_time_s * self.tps, _SUBMIT, rec.seq, 0))
        self._advance()

    def set_thermal_state(self, T_coolant_K: float, can_reject_heat: bool) -> None:
        """The coolant temperature at the racks and whether the plant can reject heat, from now on."""
        if not (isinstance(T_coolant_K, (int, float)) and math.isfinite(T_coolant_K) and T_coolant_K > 0):
            raise TwinError(f"cluster: T_coolant_K must be a finite temperature > 0 K, got {T_coolant_K!r}")
        if not isinstance(can_reject_heat, (bool, np.bool_)):
            raise TwinError(f"cluster: can_reject_heat must be True or False, got {can_reject_heat!r}")
        self._advance()
        can_reject_heat = bool(can_reject_heat)
        changed = can_reject_heat != self.can_reject_heat
        self.T_coolant_K = float(T_coolant_K)
        self.can_reject_heat = can_reject_heat
        if self.cap_policy is not None:
            capped = self.cap_policy.capped(self.T_coolant_K, can_reject_heat, self.cap_W is not None)
            new_cap = self.cap_policy.cap_W if capped else None
            if new_cap != self.cap_W:
                self._set_cap(new_cap)
                changed = True
        if changed:
            self._schedule()
            self._arm()

    # ------------------------------------------------------------------------------------------ energy
    def energy_J(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Electrical energy (J) per rack over [t0_s, t1_s), idle GPUs included: exact for the power models.
        t1_s must be now or the end of an earlier query; t0_s the end of an earlier query (or the start)."""
        self._advance()
        k0, k1 = self._tick_of(t0_s, "t0_s"), self._tick_of(t1_s, "t1_s")
        if k0 > k1:
            raise TwinError(f"cluster energy_J: t0_s ({t0_s}) is after t1_s ({t1_s})")
        return self._cum(k1) - self._cum(k0)

    def heat_J(self, t0_s: float, t1_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(to the liquid coolant, to room air) per rack over [t0_s, t1_s), J; they sum to ``energy_J``."""
        E = self.energy_J(t0_s, t1_s)
        liquid = self.spec.f_liquid * E
        return liquid, E - liquid

    def job_energy_J(self, job_id: str) -> float:
        """Energy drawn by a job's GPUs from its submission up to now."""
        self._advance()
        rec = self._rec(job_id)
        if rec.status != RUNNING:
            return rec.E_J
        g = self._groups[rec.job.power_model]
        return rec.E_J + g.energy_gpu_J(rec, self._progress(rec, self.now_tick)) * rec.job.n_gpus

    def idle_energy_J(self) -> float:
        """Energy drawn by idle GPUs from the cluster's start up to now."""
        self._advance()
        return float(np.sum(self._idle_now(self.now_tick)))

    def _tick_of(self, t_s, name: str) -> int:
        if not (isinstance(t_s, (int, float, np.integer, np.floating)) and math.isfinite(t_s)):
            raise TwinError(f"cluster energy_J: {name} must be a finite time, got {t_s!r}")
        if t_s < 0:
            raise TwinError(f"cluster energy_J: {name} must be >= 0, got {t_s}")
        k = round(t_s * self.tps)
        if abs(k - t_s * self.tps) > 1e-6 * max(1.0, abs(k)):
            raise TwinError(f"cluster energy_J: {name} = {t_s} s is not a whole tick (1/{self.tps} s)")
        return int(k)

    def _cum(self, tick: int) -> np.ndarray:
        m = self._marks.get(tick)
        if m is not None:
            return m
        if tick != self.now_tick:
            raise TwinError(f"cluster energy_J: can integrate from the start, from the ends of earlier queries "
                            f"and up to now ({self.now_tick / self.tps:g} s); {tick / self.tps:g} s is none of them")
        C = self._closed_E + self._idle_now(tick)
        for g in self._groups.values():
            if g.recs:
                C = C + g.open_J(tick)
        self._marks[tick] = C
        if len(self._marks) > MAX_MARKS:
            self._marks.popitem(last=False)
        return C

    def _idle_now(self, tick: int) -> np.ndarray:
        idle = self.spec.gpus_per_rack - self._busy
        return self._idle_E + self.spec.P_idle_W * idle * ((tick - self._idle_tick) / self.tps)

    def _idle_to(self, tick: int) -> None:
        if tick != self._idle_tick:
            self._idle_E = self._idle_now(tick)
            self._idle_tick = tick

    # ------------------------------------------------------------------------------------------ outputs
    @property
    def events(self) -> list[Event]:
        """The event log so far (a copy)."""
        self._advance()
        return list(self._log)

    def event_rows(self) -> list[dict]:
        """The event log as rows for events.parquet: time_s, kind, source (job id, or "cluster"), detail."""
        return [{"time_s": e.t_s, "kind": e.kind, "source": e.job_id or "cluster", "detail": e.detail}
                for e in self.events]

    def service_levels(self) -> ServiceLevels:
        self._advance()
        now = self.now_tick
        waits, misses, throttled, lost, n_pre, n_fin = [], 0, 0.0, 0.0, 0, 0
        for r in self._by_seq:
            j = r.job
            if r.first_start_tick is not None:
                waits.append((r.first_start_tick - r.release_tick) / self.tps)
            if j.deadline_s is not None:
                d = j.deadline_s * self.tps
                if (r.done_tick is not None and r.done_tick > d) or (r.done_tick is None and now > d):
                    misses += 1
            th = r.throttled_gpu_s
            if r.status == RUNNING and r.sigma > 1.0:
                th += (now - r.seg_tick) / self.tps * j.n_gpus
            throttled += th
            lost += r.lost_s * j.n_gpus
            n_pre += r.n_preempt
            n_fin += r.status == DONE
        w = np.array(waits)
        p50, p95 = (np.percentile(w, [50, 95]).tolist() if w.size else (math.nan, math.nan))
        return ServiceLevels(n_jobs=len(self._by_seq), n_started=len(waits), n_finished=n_fin, wait_p50_s=p50,
                             wait_p95_s=p95, deadline_misses=misses, n_preemptions=n_pre,
                             throttled_gpu_h=throttled / 3600.0, lost_work_gpu_h=lost / 3600.0)

    # ------------------------------------------------------------------------------------------ for schedulers
    @property
    def ticks_per_s(self) -> int:
        return self.tps

    def job(self, job_id: str) -> JobState:
        """The record of a job (read-only)."""
        self._advance()
        return self._rec(job_id)

    def iter_ready(self) -> Iterator[JobState]:
        """Queued jobs (released, not running, not done) in submit order, held ones included."""
        by = self._by_seq
        return (by[s] for s in self._ready)

    def running(self) -> list[JobState]:
        """Running jobs in submit order."""
        out = [r for g in self._groups.values() for r in g.recs]
        out.sort(key=lambda r: r.seq)
        return out

    def stretch(self, job: Job, cap_W: float | None) -> float:
        s = float(self.power[job.power_model].stretch(job, cap_W))
        if not (math.isfinite(s) and s >= 1.0):
            raise TwinError(f"power model {job.power_model!r}: stretch of job {job.job_id!r} at cap {cap_W} W "
                            f"is {s}, must be finite and >= 1")
        return s

    def worst_stretch(self, job: Job) -> float:
        """The largest stretch the job can see: uncapped or at the cap policy's cap (the only cap there is)."""
        s = self.stretch(job, None)
        if self.cap_policy is not None:
            s = max(s, self.stretch(job, self.cap_policy.cap_W))
        return s

    def run_ticks(self, rec: JobState, stretch: float | None = None) -> int:
        """Ticks a queued job needs to finish from its resume point, at the current cap (or a given stretch)."""
        if stretch is None:
            stretch = self.stretch(rec.job, self.cap_W)
        return _ticks((rec.job.duration_s - rec.p_s) * stretch * self.tps)

    def progress_s(self, rec: JobState) -> float:
        """Progress of a job now (nominal seconds of work)."""
        if rec.status == RUNNING:
            return self._progress(rec, self.now_tick)
        return rec.job.duration_s if rec.status == DONE else rec.p_s

    def _progress(self, rec: JobState, tick: int) -> float:
        p = rec.p_s + (tick - rec.seg_tick) / (rec.sigma * self.tps)
        return min(p, float(rec.job.duration_s))

    def _fmt(self, tick: int) -> str:
        """A tick as seconds, exactly: "3600" or "3600.25"."""
        q, r = divmod(tick, self.tps)
        return str(q) if r == 0 else repr(tick / self.tps)

    def _rec(self, job_id: str) -> JobState:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise TwinError(f"cluster: no job {job_id!r}") from None

    # ------------------------------------------------------------------------------------------ the agenda
    def _advance(self) -> None:
        """Handle every agenda item due by ``env.now``, tick by tick, each tick followed by one plan."""
        now = self.env.now
        ag = self._agenda
        while ag and ag[0][0] <= now:
            T = ag[0][0]
            self.now_tick = T
            dirty = False
            while ag and ag[0][0] == T:
                _, kind, seq, epoch = heapq.heappop(ag)
                rec = self._by_seq[seq]
                if kind == _END:
                    if rec.epoch == epoch and rec.status == RUNNING:
                        self._finish(rec, T)
                        dirty = True
                elif kind == _CKPT:
                    if rec.epoch == epoch and rec.status == RUNNING:
                        self._checkpoint(rec, T)
                elif kind == _SUBMIT:
                    self._log.append(Event(T / self.tps, "submit", rec.job.job_id, ""))
                    rec.release_tick = rec.job.earliest_start_s * self.tps
                    if rec.release_tick <= T:
                        self._enqueue(rec)
                        dirty = True
                    else:
                        heapq.heappush(ag, (rec.release_tick, _RELEASE, seq, 0))
                else:  # _RELEASE: earliest start reached, or the end of a hold
                    if rec.status == PENDING:
                        self._enqueue(rec)
                        dirty = True
                    elif rec.status == QUEUED:
                        dirty = True
            if dirty:
                self._schedule()
        self.now_tick = now
        self._arm()

    def _arm(self) -> None:
        if self._agenda:
            T = self._agenda[0][0]
            now = self.env.now
            if T > now and T not in self._armed:
                self._armed.add(T)
                self.env.timeout(T - now, value=T).callbacks.append(self._wake)

    def _wake(self, ev) -> None:
        self._armed.discard(ev.value)
        self._advance()

    def _enqueue(self, rec: JobState) -> None:
        rec.status = QUEUED
        bisect.insort(self._ready, rec.seq)

    # ------------------------------------------------------------------------------------------ decisions
    def _schedule(self) -> None:
        for _ in range(4):
            plan = self.scheduler.plan(self)
            self._apply(plan)
            if not plan.preempt:
                return
        raise TwinError(f"scheduler {type(self.scheduler).__name__}: still preempting after 4 plans at "
                        f"t = {self.now_tick / self.tps:g} s")

    def _apply(self, plan: Plan) -> None:
        T = self.now_tick
        who = type(self.scheduler).__name__
        for jid in plan.preempt:
            rec = self._rec(jid)
            if rec.status != RUNNING or not rec.job.preemptible:
                raise TwinError(f"scheduler {who}: cannot preempt job {jid!r} ({rec.status}, "
                                f"preemptible={rec.job.preemptible}) at t = {T / self.tps:g} s")
            self._preempt(rec, T)
        for jid, until, reason in plan.hold:
            rec = self._rec(jid)
            if rec.status != QUEUED or not isinstance(until, int) or until < T:
                raise TwinError(f"scheduler {who}: cannot hold job {jid!r} ({rec.status}) until tick {until!r} "
                                f"at tick {T}")
            if until > T and (until, reason) != (rec.hold_tick, rec.hold_reason):
                self._log.append(Event(T / self.tps, "defer", jid, f"until={self._fmt(until)}s {reason}"))
                heapq.heappush(self._agenda, (until, _RELEASE, rec.seq, 0))
            rec.hold_tick, rec.hold_reason = until, reason
        for jid, tick in plan.wake:
            rec = self._rec(jid)
            if isinstance(tick, int) and tick > T and (rec.seq, tick) not in self._wakes:
                self._wakes.add((rec.seq, tick))
                heapq.heappush(self._agenda, (tick, _RELEASE, rec.seq, 0))
        for jid in plan.start:
            rec = self._rec(jid)
            if rec.status != QUEUED or (rec.hold_tick is not None and rec.hold_tick > T):
                raise TwinError(f"scheduler {who}: cannot start job {jid!r} ({rec.status}, held until tick "
                                f"{rec.hold_tick}) at tick {T}")
            if rec.job.n_gpus > self.free_gpus:
                raise TwinError(f"scheduler {who}: job {jid!r} needs {rec.job.n_gpus} GPUs, {self.free_gpus} free "
                                f"at t = {T / self.tps:g} s")
            self._start(rec, T)

    # ------------------------------------------------------------------------------------------ transitions
    def _place(self, n: int) -> tuple[tuple[int, int], ...]:
        free = self._node_free
        best = -1
        for i, f in enumerate(free):
            if f >= n and (best < 0 or f < free[best]):
                best = i
        if best >= 0:
            return ((best, n),)
        out = []
        for i in sorted(range(len(free)), key=lambda i: (-free[i], i)):
            k = min(free[i], n)
            if k:
                out.append((i, k))
                n -= k
            if n == 0:
                break
        return tuple(sorted(out))

    def _start(self, rec: JobState, T: int) -> None:
        self._idle_to(T)
        j = rec.job
        alloc = self._place(j.n_gpus)
        rack = np.zeros(self.spec.n_racks)
        for node, k in alloc:
            self._node_free[node] -= k
            rack[node // self.spec.nodes_per_rack] += k
        self.free_gpus -= j.n_gpus
        self._busy += rack
        rec.alloc, rec.rack_gpus = alloc, rack
        self._ready.remove(rec.seq)
        rec.status = RUNNING
        rec.hold_tick, rec.hold_reason = None, ""
        if rec.first_start_tick is None:
            rec.first_start_tick = T
        self._begin(rec, T)
        where = ",".join(f"n{node}:{k}" for node, k in alloc)
        self._log.append(Event(T / self.tps, "start", j.job_id, where if rec.cap_W is None
                               else f"{where} cap={rec.cap_W:g}W"))

    def _begin(self, rec: JobState, T: int) -> None:
        """Open a segment at T at the current cap: schedule its end and next checkpoint."""
        j = rec.job
        rec.cap_W = self.cap_W
        rec.sigma = self.stretch(j, self.cap_W)
        rec.seg_tick = T
        rec.q_p_s, rec.q_E_J = rec.p_s, 0.0
        rec.epoch += 1
        den = rec.sigma * self.tps
        rec.end_tick = T + _ticks((j.duration_s - rec.p_s) * den)
        heapq.heappush(self._agenda, (rec.end_tick, _END, rec.seq, rec.epoch))
        ci = j.checkpoint_interval_s
        if ci is not None:
            rec.ckpt_k = math.floor(rec.p_s / ci + 1e-9)
            self._next_checkpoint(rec)
        self._groups[j.power_model].add(rec, den)

    def _next_checkpoint(self, rec: JobState) -> None:
        ci = rec.job.checkpoint_interval_s
        p = (rec.ckpt_k + 1) * ci
        if p < rec.job.duration_s:
            tick = rec.seg_tick + _ticks((p - rec.p_s) * rec.sigma * self.tps)
            heapq.heappush(self._agenda, (tick, _CKPT, rec.seq, rec.epoch))

    def _close(self, rec: JobState, T: int, p_end: float) -> None:
        """Close the open segment at T (progress p_end): book its energy, leave the GPUs allocated."""
        g = self._groups[rec.job.power_model]
        e = g.energy_gpu_J(rec, p_end)
        rec.E_J += e * rec.job.n_gpus
        self._closed_E += e * rec.rack_gpus
        if rec.sigma > 1.0:
            rec.throttled_gpu_s += (T - rec.seg_tick) / self.tps * rec.job.n_gpus
        g.remove(rec)
        rec.p_s = p_end
        rec.epoch += 1

    def _release_gpus(self, rec: JobState, T: int) -> None:
        self._idle_to(T)
        for node, k in rec.alloc:
            self._node_free[node] += k
        self.free_gpus += rec.job.n_gpus
        self._busy -= rec.rack_gpus
        rec.alloc = ()

    def _finish(self, rec: JobState, T: int) -> None:
        self._close(rec, T, float(rec.job.duration_s))
        self._release_gpus(rec, T)
        rec.status = DONE
        rec.done_tick = T
        d = rec.job.deadline_s
        self._log.append(Event(T / self.tps, "end", rec.job.job_id,
                               "late" if d is not None and T > d * self.tps else ""))

    def _checkpoint(self, rec: JobState, T: int) -> None:
        rec.ckpt_k += 1
        rec.ckpt_p_s = float(rec.ckpt_k * rec.job.checkpoint_interval_s)
        self._log.append(Event(T / self.tps, "checkpoint", rec.job.job_id, f"p={rec.ckpt_p_s!r}s"))
        self._next_checkpoint(rec)

    def _preempt(self, rec: JobState, T: int) -> None:
        p = self._progress(rec, T)
        self._close(rec, T, p)
        self._release_gpus(rec, T)
        back = rec.ckpt_p_s if rec.job.checkpoint_interval_s is not None else 0.0
        lost = max(0.0, p - back)
        rec.lost_s += lost
        rec.p_s = back
        rec.n_preempt += 1
        rec.hold_tick, rec.hold_reason = None, ""
        self._enqueue(rec)
        self._log.append(Event(T / self.tps, "preempt", rec.job.job_id, f"resume={back!r}s lost={lost!r}s"))

    def _set_cap(self, cap_W: float | None) -> None:
        T = self.now_tick
        self._log.append(Event(T / self.tps, "cap", "", f"{cap_W:g}W") if cap_W is not None
                         else Event(T / self.tps, "uncap", "", ""))
        self.cap_W = cap_W
        for rec in self.running():
            self._close(rec, T, self._progress(rec, T))
            self._begin(rec, T)

    # ------------------------------------------------------------------------------------------ checkpoints
    _STATE = ("now_tick", "free_gpus", "_node_free", "_busy", "_idle_E", "_idle_tick", "_closed_E", "_by_seq",
              "_ready", "_agenda", "_log", "_marks", "T_coolant_K", "can_reject_heat", "cap_W", "_wakes")

    def get_state(self) -> bytes:
        """The whole state (queue, running jobs with progress, agenda, log, energy sums) as bytes."""
        self._advance()
        groups = {name: [r.seq for r in g.recs] for name, g in self._groups.items()}
        blob = {k: getattr(self, k) for k in self._STATE}
        blob |= {"spec": self.spec, "tps": self.tps, "cap_policy": self.cap_policy, "groups": groups}
        return pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL)

    def set_state(self, state: bytes) -> None:
        """Restore ``get_state``'s snapshot into this cluster, whose environment must be at the snapshot's tick
        (a fresh ``simpy.Environment(initial_time=tick)``); pending wake-ups are re-created."""
        s = pickle.loads(state)
        if (s["spec"], s["tps"], s["cap_policy"]) != (self.spec, self.tps, self.cap_policy):
            raise TwinError("cluster set_state: the snapshot is of a cluster with another spec, tick or cap policy")
        if set(s["groups"]) != set(self._groups):
            raise TwinError(f"cluster set_state: the snapshot's power models {sorted(s['groups'])} differ from "
                            f"this cluster's {sorted(self._groups)}")
        if self.env.now != s["now_tick"]:
            raise TwinError(f"cluster set_state: the environment is at tick {self.env.now}, the snapshot at "
                            f"tick {s['now_tick']}")
        for k in self._STATE:
            setattr(self, k, s[k])
        self._jobs = {r.job.job_id: r for r in self._by_seq}
        self._armed = set()
        for name, g in self._groups.items():
            g.recs.clear()
            for seq in s["groups"][name]:
                rec = self._by_seq[seq]
                g.add(rec, rec.sigma * self.tps)
        self._arm()
