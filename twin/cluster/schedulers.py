"""Schedulers of the GPU cluster: FIFO, EASY backfill, and thermal dispatch.

A scheduler is asked once after the events of each tick: ``plan(cluster) -> Plan`` (which jobs to start, to
preempt, to hold until a later tick). It reads the cluster (queued jobs in submit order, running jobs, free
GPUs, cap, thermal state) and keeps no state of its own, so a cluster checkpoint holds everything.

- ``Fifo``: start queued jobs in submit order while the first one fits; the first that does not blocks the rest.
- ``EasyBackfill``: FIFO, and when the first job does not fit it gets a reservation at the earliest time enough
  GPUs are free (running jobs ending at their expected ends, at the current cap); later jobs start now if they
  fit and do not delay it: they end by then, or use only GPUs the reserved job leaves over.
- ``ThermalDispatch``: holds deferrable jobs (fine-tuning, evaluation, batch inference) until the start (now, an
  hour start, or the latest start) that gives the best mean score over their nominal run (hourly heat demand or
  value up, price and carbon down), never later than their latest start (deadline minus the run time at the
  worst cap, minus one tick; and at most ``max_defer_s`` after release). A hold is admitted only where a
  calendar of committed GPUs (running jobs to their expected ends, queued and held jobs over their runs) leaves
  room for the job within ``1 - reserve`` of the cluster, so holds do not pile up in the best hour. While the
  plant cannot reject heat it holds deferrable jobs (to their latest start, re-planned when heat can be rejected
  again) and sheds running ones. It preempts (rolling back to the last checkpoint) only preemptible deferrable
  jobs with a checkpoint interval that can still wait ``slack_min_s`` afterwards: to start online inference at
  once, to start jobs at their latest start, and to shed. Online inference, pretraining and other work are never
  held. The jobs let run are placed by EASY backfill in the order: online inference, jobs at their latest start
  (earliest first), the rest in submit order.
  Deadlines are met whenever the GPUs are there at a job's latest start; work that is never held (online
  inference, pretraining) can still fill the cluster, and then misses are counted, not prevented.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import TwinError
from .jobs import WorkloadClass
from .sim import Cluster, JobState, Plan

HOUR_S = 3600
SCORE_DECIMALS = 9         # mean scores are compared rounded, so that rounding noise never breaks a tie
SIGNALS = "signals"        # hold reason: a better hour is coming
NO_REJECTION = "no_heat_rejection"  # hold reason: the plant cannot reject heat
_EMPTY = Plan()
_ONLINE, _FT, _EVAL, _BATCH = (WorkloadClass.ONLINE_INFERENCE, WorkloadClass.FINE_TUNING, WorkloadClass.EVALUATION,
                               WorkloadClass.BATCH_INFERENCE)
if {c for c in WorkloadClass if c.deferrable} != {_FT, _EVAL, _BATCH}:  # plan() tests these by identity
    raise TwinError("thermal dispatch: WorkloadClass.deferrable changed; update plan()'s class tests")


class Scheduler(Protocol):
    def plan(self, c: Cluster) -> Plan: ...


@dataclass(frozen=True)
class Fifo:
    """First in, first out; the first job that does not fit blocks the queue."""

    def plan(self, c: Cluster) -> Plan:
        free = c.free_gpus
        if free == 0:
            return _EMPTY
        start = []
        for r in c.iter_ready():
            n = r.job.n_gpus
            if n > free:
                break
            start.append(r.job.job_id)
            free -= n
        return Plan(start=tuple(start))


@dataclass(frozen=True)
class EasyBackfill:
    """EASY backfill: a reservation for the first job that does not fit; later jobs may start if they do not
    delay it (run times from the jobs' nominal durations at the current cap)."""

    def plan(self, c: Cluster) -> Plan:
        if c.free_gpus == 0:
            return _EMPTY
        return Plan(start=tuple(easy(c, list(c.iter_ready()), c.free_gpus)))


def easy(c: Cluster, order: list[JobState], free: int, exclude: frozenset[int] = frozenset()) -> list[str]:
    """Ids of the jobs of ``order`` to start now with ``free`` GPUs, by EASY backfill. ``exclude``: seqs of
    running jobs about to be preempted (their GPUs are counted in ``free``)."""
    now = c.now_tick
    start: list[str] = []
    started: list[tuple[int, int]] = []  # (expected end tick, GPUs) of the jobs started here
    it = iter(order)
    for r in it:
        n = r.job.n_gpus
        if n <= free:
            start.append(r.job.job_id)
            started.append((now + c.run_ticks(r), n))
            free -= n
            continue
        # r is the head: reserve for it at the shadow time
        ends = sorted([(x.end_tick, x.job.n_gpus) for x in c.running() if x.seq not in exclude] + started)
        avail, shadow, extra = free, None, 0
        for t_end, k in ends:
            avail += k
            if avail >= n:
                shadow, extra = t_end, avail - n
                break
        if shadow is None:  # cannot happen: a job never needs more GPUs than the cluster has
            raise TwinError(f"EASY: no reservation found for job {r.job.job_id!r} ({n} GPUs)")
        for b in it:
            if free == 0:
                break
            m = b.job.n_gpus
            if m > free:
                continue
            if now + c.run_ticks(b) <= shadow:
                start.append(b.job.job_id)
                free -= m
            elif m <= extra:
                start.append(b.job.job_id)
                free -= m
                extra -= m
        break
    return start


# ---------------------------------------------------------------------------------------------- thermal
@dataclass(frozen=True, eq=False)
class Signals:
    """Hourly forecasts from t = 0 s (hour k covers [3600 k, 3600 (k+1)) s), each in any unit (they are
    standardised: z = (x - mean) / std over the array) or None: ``heat`` (heat demand or heat value: higher is a
    better time to run), ``price`` (electricity), ``carbon`` (grid intensity); lower is better for those two.
    score = w_heat z_heat - w_price z_price - w_carbon z_carbon. Past the arrays' end the last hour's score
    holds."""

    heat: np.ndarray | None = None
    price: np.ndarray | None = None
    carbon: np.ndarray | None = None
    w_heat: float = 1.0
    w_price: float = 1.0
    w_carbon: float = 1.0
    score: np.ndarray = field(init=False, repr=False)
    _cum: np.ndarray = field(init=False, repr=False)   # integral of the score from 0 to each hour start, s

    def __post_init__(self):
        problems, score, n = [], None, None
        for name, sign in (("heat", 1.0), ("price", -1.0), ("carbon", -1.0)):
            x, w = getattr(self, name), getattr(self, f"w_{name}")
            if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
                problems.append(f"w_{name}: must be a finite number >= 0, got {w!r}")
                continue
            if x is None:
                continue
            a = np.array(x, dtype=np.float64)
            if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
                problems.append(f"{name}: must be a non-empty 1-D array of finite numbers")
                continue
            if n is not None and a.size != n:
                problems.append(f"{name}: has {a.size} hours, another signal has {n}")
                continue
            n = a.size
            a.setflags(write=False)
            object.__setattr__(self, name, a)
            sd = float(np.std(a))
            z = (a - a.mean()) / sd if sd > 0 else np.zeros_like(a)
            score = sign * w * z if score is None else score + sign * w * z
        if score is None and not problems:
            problems.append("no signal given")
        if problems:
            raise TwinError("thermal dispatch signals: " + "; ".join(problems))
        score.setflags(write=False)
        cum = np.concatenate(([0.0], np.cumsum(score) * HOUR_S))
        cum.setflags(write=False)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "_cum", cum)

    def integral(self, t_s: np.ndarray) -> np.ndarray:
        """Integral of the score from 0 to t_s (seconds, >= 0)."""
        n = self.score.size
        k = np.minimum(np.floor(t_s / HOUR_S), n).astype(np.int64)
        rate = self.score[np.minimum(k, n - 1)]
        return self._cum[k] + rate * (t_s - k * HOUR_S)

    def mean_score(self, t0_s: np.ndarray, dur_s: float) -> np.ndarray:
        """Mean score over [t0_s, t0_s + dur_s) for each start t0_s."""
        return (self.integral(t0_s + dur_s) - self.integral(t0_s)) / dur_s


@dataclass(frozen=True)
class ThermalDispatch:
    """Thermal dispatch (see the module docstring).

    ``max_defer_s``: the longest hold after release. ``min_gain``: a later start must beat starting now by more
    than this mean score (z units). ``reserve``: share of the GPUs a hold may not count on (left for work that
    is never held). ``slack_min_s``: a job is preempted only if it can still wait this long after rolling back
    to its last checkpoint. ``preempt_for_urgent``: preempt for online inference and for jobs at their latest
    start; ``shed``: preempt while the plant cannot reject heat.
    """

    signals: Signals
    max_defer_s: int = 86_400
    min_gain: float = 0.0
    reserve: float = 0.1
    slack_min_s: int = 3600
    preempt_for_urgent: bool = True
    shed: bool = True

    def __post_init__(self):
        problems = []
        for name in ("max_defer_s", "slack_min_s"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
                problems.append(f"{name}: must be an integer >= 0, got {v!r}")
        if not (isinstance(self.min_gain, (int, float)) and self.min_gain >= 0):
            problems.append(f"min_gain: must be a number >= 0, got {self.min_gain!r}")
        if not (isinstance(self.reserve, (int, float)) and 0 <= self.reserve < 1):
            problems.append(f"reserve: must be in [0, 1), got {self.reserve!r}")
        if problems:
            raise TwinError("thermal dispatch: " + "; ".join(problems))

    def latest_start(self, c: Cluster, r: JobState, p_s: float | None = None) -> int:
        """The last tick at which job r (resuming from progress p_s, default its resume point) can start and
        still end by its deadline at the worst cap; without a deadline, max_defer_s after its release."""
        tps = c.ticks_per_s
        j = r.job
        L = r.release_tick + self.max_defer_s * tps
        if j.deadline_s is not None:
            p = r.p_s if p_s is None else p_s
            run = math.ceil((j.duration_s - p) * r.sigma_w * tps)
            L = min(L, j.deadline_s * tps - run - 1)  # one tick of margin for the rounding of segment ends
        return L

    def best_start(self, c: Cluster, r: JobState, L: int, cal: _Calendar | None = None) -> int:
        """The start in [now, L] (now, hour starts, L) with the best mean score over the job's nominal run;
        a later start only if it beats now by more than min_gain and, with a calendar, has room for the job."""
        now, tps = c.now_tick, c.ticks_per_s
        if L <= now:
            return now
        H = HOUR_S * tps
        cand = [now, *range((now // H + 1) * H, L + 1, H)]
        if cand[-1] != L:
            cand.append(L)
        t = np.array(cand, dtype=np.int64)
        dur_s = float(r.job.duration_s - r.p_s)
        m = np.round(self.signals.mean_score(t / tps, dur_s), SCORE_DECIMALS)  # equal hours tie exactly
        better = np.flatnonzero(m > m[0] + self.min_gain)
        if better.size == 0:
            return now
        run = math.ceil(dur_s * tps)
        for i in better[np.argsort(-m[better], kind="stable")].tolist():  # best first; ties: earliest
            if cal is None or cal.fits(int(t[i]), run, r.job.n_gpus):
                return int(t[i])
        return now

    def _sheddable(self, c: Cluster, r: JobState) -> bool:
        """Preemptible deferrable work with a checkpoint interval that can still wait slack_min_s after rolling
        back to its last checkpoint."""
        j = r.job
        return (j.preemptible and j.workload_class.deferrable and j.checkpoint_interval_s is not None
                and self.latest_start(c, r, r.ckpt_p_s) >= c.now_tick + self.slack_min_s * c.ticks_per_s)

    def plan(self, c: Cluster) -> Plan:
        now = c.now_tick
        holds: list[tuple[str, int, str]] = []
        waiting_until: dict[int, int] = {}
        online: list[JobState] = []
        urgent: list[tuple[int, int, JobState]] = []
        normal: list[JobState] = []
        cal = None
        for r in c.iter_ready():
            j = r.job
            wc = j.workload_class
            if wc is _ONLINE:
                online.append(r)
                continue
            if wc is _FT or wc is _EVAL or wc is _BATCH:  # WorkloadClass.deferrable, without the enum hashing
                planned = r.hold_tick is not None and r.hold_reason != NO_REJECTION
                if planned and r.hold_tick > now:
                    continue
                L = self.latest_start(c, r)
                if not c.can_reject_heat and L > now:
                    if (r.hold_tick, r.hold_reason) != (L, NO_REJECTION):
                        holds.append((j.job_id, L, NO_REJECTION))
                    continue
                if not planned:
                    if cal is None:
                        cal = _Calendar(c, math.floor(c.spec.n_gpus * (1.0 - self.reserve)), skip=_to_plan)
                    T = self.best_start(c, r, L, cal)
                    holds.append((j.job_id, T, SIGNALS))
                    cal.add(T, c.run_ticks(r, 1.0), j.n_gpus)
                    if T > now:
                        continue
                if L <= now:
                    urgent.append((L, r.seq, r))
                    continue
                waiting_until[r.seq] = L      # if it cannot start now, plan again at its latest start
            normal.append(r)

        urgent.sort(key=lambda x: (x[0], x[1]))
        first = online + [r for _, _, r in urgent]
        victims: list[JobState] = []
        if first and self.preempt_for_urgent:
            self._make_room(c, first, victims)
        if self.shed and not c.can_reject_heat:
            chosen = {v.seq for v in victims}
            victims += [r for r in c.running() if r.seq not in chosen and self._sheddable(c, r)]
        free = c.free_gpus + sum(v.job.n_gpus for v in victims)
        order = first + normal
        start = easy(c, order, free, frozenset(v.seq for v in victims)) if free and order else []
        started = set(start)
        wake = tuple((r.job.job_id, waiting_until[r.seq]) for r in normal
                     if r.seq in waiting_until and r.job.job_id not in started)
        return Plan(start=tuple(start), preempt=tuple(v.job.job_id for v in victims), hold=tuple(holds), wake=wake)

    def _make_room(self, c: Cluster, first: list[JobState], victims: list[JobState]) -> None:
        """Add to ``victims`` the running jobs to preempt so that the jobs of ``first`` fit, in order; stop at
        the first that cannot be made to fit."""
        f = c.free_gpus
        cands = None
        for r in first:
            n = r.job.n_gpus
            if n <= f:
                f -= n
                continue
            if cands is None:
                cands = [x for x in c.running() if self._sheddable(c, x)]
                # least work lost first (GPU-seconds since the last checkpoint), then submit order
                cands.sort(key=lambda x: ((c.progress_s(x) - x.ckpt_p_s) * x.job.n_gpus, x.seq))
            take, got = [], 0
            for x in cands:
                if f + got >= n:
                    break
                take.append(x)
                got += x.job.n_gpus
            if f + got < n:
                return
            victims.extend(take)
            cands = cands[len(take):]
            f += got - n


def _to_plan(r: JobState) -> bool:
    """A deferrable queued job whose start ThermalDispatch.plan is about to choose (not held by the signals yet)."""
    wc = r.job.workload_class
    return (wc is _FT or wc is _EVAL or wc is _BATCH) and (r.hold_tick is None or r.hold_reason == NO_REJECTION)


class _Calendar:
    """GPUs committed over time, for admitting holds: running jobs until their expected ends, queued jobs
    that are not held from now for their nominal run, held jobs over their planned run. A hold is admitted at
    T if the commitment over [T, T + run) plus the job stays within ``limit`` GPUs."""

    def __init__(self, c: Cluster, limit: int, skip=None):
        """``skip(r)``: queued jobs left out (the caller adds them where it plans them)."""
        now = c.now_tick
        self.limit = limit
        iv = [(now, x.end_tick, x.job.n_gpus) for x in c.running()]
        for r in c.iter_ready():
            if skip is not None and skip(r):
                continue
            start = r.hold_tick if r.hold_tick is not None and r.hold_tick > now else now
            iv.append((start, start + c.run_ticks(r, 1.0), r.job.n_gpus))
        self.iv = iv
        self._arrays = None

    def add(self, t: int, run: int, n: int) -> None:
        self.iv.append((t, t + run, n))
        self._arrays = None

    def fits(self, t: int, run: int, n: int) -> bool:
        if self._arrays is None:
            a = np.array(self.iv, dtype=np.int64).reshape(-1, 3)
            pts, inv = np.unique(np.concatenate((a[:, 0], a[:, 1])), return_inverse=True)
            delta = np.zeros(pts.size + 1, dtype=np.int64)
            np.add.at(delta, inv[: len(a)], a[:, 2])
            np.add.at(delta, inv[len(a):], -a[:, 2])
            self._arrays = (pts, np.cumsum(delta)[:-1])  # level[i]: GPUs committed on [pts[i], pts[i+1])
        pts, level = self._arrays
        i0 = int(np.searchsorted(pts, t, side="right")) - 1    # the piece holding t (-1: before all)
        i1 = int(np.searchsorted(pts, t + run, side="left"))   # the first piece at or after the window's end
        seg = level[max(i0, 0):i1]
        return (int(seg.max()) if seg.size else 0) + n <= self.limit
