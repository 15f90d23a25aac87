"""Synthetic workloads fitted from a trace: jobs (per workload class) and LLM request streams.

What is modelled, per workload class, each part fitted on the trace's arrivals inside the given windows:

- Arrivals: a renewal process in diurnally rescaled time. The rate has a 24-hour shape (hourly factors of
  mean 1, from the arrival counts per hour of day over the windows' exposure, with half an arrival added per
  hour so that no hour has rate zero); it is fitted only where the windows cover every hour of the day for
  ``MIN_DIURNAL_EXPOSURE_S / 24`` (two days' worth) and hold at least ``MIN_DIURNAL_ARRIVALS``, and is flat
  otherwise. Operational
  time ``u(t) = integral of shape(t) dt`` turns the arrivals into a stationary stream whose gaps are
  fitted: an atom at zero for simultaneous arrivals (batch submissions at the same second) and a log-space
  kernel density (``LogKde``) for the positive gaps. The first arrival comes from the forward-recurrence
  distribution, as for a stream already running. A class with fewer than ``MIN_RENEWAL_ARRIVALS`` arrivals
  gets a Poisson process (exponential gaps, rate = arrivals / exposure) instead.
- Durations: a log-space Gaussian kernel density with a bandwidth per point (``LogKde``), each kernel keeping
  its point's mean (so GPU-hours, hence energy, are not inflated by the smoothing); rounded to whole seconds,
  >= 1 s.
- Sizes: the joint shares of (GPU count, GPU share) of the class, drawn independently of the duration (in the
  Alibaba trace, multi-GPU pods do not run longer than single-GPU ones).
- Classes are independent streams; each draws from its own child of the caller's numpy ``Generator``
  (``Generator.spawn``, one child per ``WorkloadClass`` in declaration order), so the same seed gives the same
  jobs, and one class's jobs do not change when another class is added.

Requests (``fit_requests``): the same arrival model, and log-space densities of prompt and output tokens
(independent: their correlation in the Azure code trace is -0.005), rounded to whole tokens, >= 1.

Times of the diurnal shape are in the trace's own frame: hour of day = ``(t mod 86400) // 3600``; generate in
the same frame. Attributes a trace does not give (power model, preemption, checkpoints, deadlines) come from a
``JobTemplate`` per class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import CalibrationError
from .jobs import DEFAULT_POWER_MODEL, Job, RequestStream, WorkloadClass

DAY_S = 86_400
HOUR_S = 3_600
MIN_DIURNAL_EXPOSURE_S = 2 * DAY_S
MIN_DIURNAL_ARRIVALS = 240          # ten per hour bin on average
MIN_RENEWAL_ARRIVALS = 20
_CLASSES = tuple(WorkloadClass)


# ---------------------------------------------------------------------------------------------- distributions
@dataclass(frozen=True, eq=False)
class LogKde:
    """Gaussian kernel density on log x with a bandwidth per point, mean-preserving.

    Draws ``exp(log x_i + h_i z - h_i^2 / 2)`` for a random training point i and a standard normal z, so each
    kernel keeps its point's value as its mean. ``h_i`` is the distance (in log x) from point i to its k-th
    nearest neighbour, k = ceil(sqrt(n)), capped at Silverman's global bandwidth: narrow where the data are
    dense (a sharp peak such as a 10 Hz client, or an atom of equal values that stays an atom), Silverman's
    smoothing in the sparse tails. One global bandwidth would smear the peaks; without the cap the kernels of
    isolated tail points would be so wide that sample means become erratic.
    """

    log_x: np.ndarray      # training points, sorted
    bandwidth: np.ndarray  # per point

    @classmethod
    def fit(cls, x: np.ndarray) -> LogKde:
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0 or np.any(~np.isfinite(x)) or np.any(x <= 0):
            raise CalibrationError(f"a log-space density needs finite values > 0, got {x.size} values")
        log_x = np.sort(np.log(x))
        h = np.minimum(_knn_distance(log_x, math.ceil(math.sqrt(log_x.size))), _silverman(log_x))
        log_x.setflags(write=False)
        h.setflags(write=False)
        return cls(log_x=log_x, bandwidth=h)

    @property
    def mean(self) -> float:
        return float(np.mean(np.exp(self.log_x)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        i = rng.integers(self.log_x.size, size=n)
        h = self.bandwidth[i]
        return np.exp(self.log_x[i] + h * rng.standard_normal(n) - 0.5 * h * h)


def _knn_distance(s: np.ndarray, k: int) -> np.ndarray:
    """Distance from each value of the sorted array ``s`` to its k-th nearest other value."""
    n = s.size
    k = min(k, n - 1)
    if k < 1:
        return np.zeros(n)
    pad = np.concatenate((np.full(k, -np.inf), s, np.full(k, np.inf)))
    best = np.full(n, np.inf)
    for left in range(k + 1):  # the k neighbours: `left` below, k - left above
        below = s - pad[k - left:k - left + n]
        above = pad[2 * k - left:2 * k - left + n] - s
        best = np.minimum(best, np.maximum(below, above))
    return best


@dataclass(frozen=True)
class Exponential:
    """Exponential gaps (a Poisson process) of the given mean."""

    mean: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, size=n)


def _silverman(v: np.ndarray) -> float:
    if v.size < 2:
        return 0.0
    q75, q25 = np.percentile(v, [75, 25])
    spread = min(float(np.std(v, ddof=1)), float(q75 - q25) / 1.349)
    if spread <= 0:
        spread = float(np.std(v, ddof=1))
    return 0.9 * spread * v.size ** -0.2


# ------------------------------------------------------------------------------------------------ arrivals
@dataclass(frozen=True, eq=False)
class ArrivalProcess:
    """A renewal process in diurnally rescaled time (see the module docstring)."""

    shape: np.ndarray          # 24 hourly rate factors, mean 1
    p_zero: float              # share of gaps that are zero (simultaneous arrivals)
    gaps: LogKde | Exponential  # positive gaps, in operational seconds

    @property
    def rate_per_s(self) -> float:
        """Mean arrivals per second."""
        return 1.0 / ((1.0 - self.p_zero) * self.gaps.mean)

    def _cum(self) -> np.ndarray:
        c = np.concatenate(([0.0], np.cumsum(self.shape) * HOUR_S))
        c[-1] = DAY_S
        return c

    def operational(self, t_s: np.ndarray) -> np.ndarray:
        """u(t): operational seconds at times t (same frame as t; u advances on average like t)."""
        t = np.asarray(t_s, dtype=np.float64)
        day = np.floor(t / DAY_S)
        rem = t - day * DAY_S
        h = np.clip((rem // HOUR_S).astype(np.int64), 0, 23)
        return day * DAY_S + self._cum()[h] + self.shape[h] * (rem - h * HOUR_S)

    def clock(self, u: np.ndarray) -> np.ndarray:
        """t(u), the inverse of ``operational``."""
        u = np.asarray(u, dtype=np.float64)
        cum = self._cum()
        day = np.floor(u / DAY_S)
        rem = u - day * DAY_S
        h = np.clip(np.searchsorted(cum, rem, side="right") - 1, 0, 23)
        return day * DAY_S + h * HOUR_S + (rem - cum[h]) / self.shape[h]

    def _gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        g = self.gaps.sample(rng, n)
        if self.p_zero > 0:
            g[rng.random(n) < self.p_zero] = 0.0
        return g

    def times(self, rng: np.random.Generator, start_s: float, end_s: float) -> np.ndarray:
        """Arrival times (float seconds) in [start_s, end_s), increasing."""
        u0, u1 = (float(x) for x in self.operational(np.array([start_s, end_s], dtype=np.float64)))
        span = u1 - u0
        if span <= 0:
            return np.zeros(0)
        # the first arrival: forward-recurrence time = a length-biased gap times a uniform fraction
        probe = self._gaps(rng, 1024)
        total = probe.sum()
        first = rng.random() * probe[rng.choice(probe.size, p=probe / total)] if total > 0 else 0.0
        mean = (1.0 - self.p_zero) * self.gaps.mean
        chunk = int(span / mean * 1.05) + 64
        parts, reach = [np.array([first])], first
        while reach < span:
            g = self._gaps(rng, chunk)
            parts.append(g)
            reach += float(g.sum())
        u = u0 + np.cumsum(np.concatenate(parts))
        u = u[u < u1]
        return np.minimum(self.clock(u), np.nextafter(float(end_s), -math.inf))


def fit_arrivals(t_s: np.ndarray, windows: Sequence[tuple[float, float]]) -> ArrivalProcess:
    """The arrival process of the arrivals ``t_s`` (seconds, increasing) that fall inside ``windows``."""
    windows = _check_windows(windows)
    t = np.sort(np.asarray(t_s, dtype=np.float64))
    inside = [t[(t >= s) & (t < e)] for s, e in windows]
    n = sum(x.size for x in inside)
    exposure_s = sum(e - s for s, e in windows)
    if n == 0:
        raise CalibrationError(f"no arrivals inside the windows {windows}: nothing to fit")
    shape = np.ones(24)
    hourly_exposure_s = _hourly_exposure_s(windows)
    if hourly_exposure_s.min() >= MIN_DIURNAL_EXPOSURE_S / 24 and n >= MIN_DIURNAL_ARRIVALS:
        hours = np.concatenate([((x % DAY_S) // HOUR_S).astype(np.int64) for x in inside])
        rate = (np.bincount(hours, minlength=24) + 0.5) / hourly_exposure_s
        shape = rate / rate.mean()
    shape.setflags(write=False)
    flat = ArrivalProcess(shape=shape, p_zero=0.0, gaps=Exponential(exposure_s / n))
    if n < MIN_RENEWAL_ARRIVALS:
        return flat
    gaps = np.concatenate([np.diff(flat.operational(x)) for x in inside])
    gaps = np.maximum(gaps, 0.0)  # rounding in u(t) may make equal times differ by -1 ulp
    positive = gaps[gaps > 0]
    if positive.size < 2:
        return flat
    return ArrivalProcess(shape=shape, p_zero=float(np.mean(gaps == 0)), gaps=LogKde.fit(positive))


def _hourly_exposure_s(windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Seconds of the windows falling in each hour of day."""
    out = np.zeros(24)
    for s, e in windows:
        first, last = math.floor(s / HOUR_S), math.ceil(e / HOUR_S)
        k = np.arange(first, last)
        lo = np.maximum(k * HOUR_S, s)
        hi = np.minimum((k + 1) * HOUR_S, e)
        np.add.at(out, k % 24, np.maximum(hi - lo, 0.0))
    return out


def _check_windows(windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out = [(float(s), float(e)) for s, e in windows]
    if not out:
        raise CalibrationError("no fitting windows given")
    for k, (s, e) in enumerate(out):
        if not (math.isfinite(s) and math.isfinite(e) and s < e):
            raise CalibrationError(f"fitting window {k} ({s}, {e}): start must be finite and before end")
        if k and s < out[k - 1][1]:
            raise CalibrationError(f"fitting window {k} ({s}, {e}) starts before window {k - 1} ends: "
                                   f"windows must be sorted and must not overlap")
    return out


# ------------------------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class JobTemplate:
    """What a trace does not say about a generated job of a class."""

    power_model: str = DEFAULT_POWER_MODEL
    preemptible: bool = False
    checkpoint_interval_s: int | None = None
    deadline_factor: float | None = None  # deadline = submit + ceil(factor * duration), factor >= 1; None: none

    def __post_init__(self):
        f = self.deadline_factor
        if f is not None and not (isinstance(f, (int, float)) and math.isfinite(f) and f >= 1):
            raise CalibrationError(f"JobTemplate: deadline_factor must be a number >= 1 or None, got {f!r}")


@dataclass(frozen=True, eq=False)
class ClassModel:
    """The fitted workload of one class."""

    workload_class: WorkloadClass
    arrivals: ArrivalProcess
    duration_s: LogKde
    sizes: tuple[tuple[int, float], ...]   # (n_gpus, gpu_share) seen in the trace
    size_p: tuple[float, ...]              # their shares


@dataclass(frozen=True, eq=False)
class WorkloadModel:
    """A fitted job workload: one ``ClassModel`` per class seen in the fitting windows."""

    classes: tuple[ClassModel, ...]

    def generate(self, rng: np.random.Generator, start_s: int, end_s: int, *,
                 templates: Mapping[WorkloadClass, JobTemplate] | None = None,
                 id_prefix: str = "syn-") -> tuple[Job, ...]:
        """Jobs submitted in [start_s, end_s), sorted by submit time, ids ``{id_prefix}{k}`` in that order."""
        if not (isinstance(start_s, int) and isinstance(end_s, int) and 0 <= start_s < end_s):
            raise CalibrationError(f"generate: need integers 0 <= start_s < end_s, got {start_s!r}, {end_s!r}")
        templates = templates or {}
        children = rng.spawn(len(_CLASSES))
        submit, duration, n_gpus, share, cls = [], [], [], [], []
        for cm in self.classes:
            r = children[_CLASSES.index(cm.workload_class)]
            t = np.floor(cm.arrivals.times(r, start_s, end_s)).astype(np.int64)
            d = np.maximum(1, np.rint(cm.duration_s.sample(r, t.size))).astype(np.int64)
            k = r.choice(len(cm.sizes), size=t.size, p=np.array(cm.size_p))
            submit.append(t)
            duration.append(d)
            n_gpus.append(np.array([cm.sizes[i][0] for i in range(len(cm.sizes))], np.int64)[k])
            share.append(np.array([cm.sizes[i][1] for i in range(len(cm.sizes))])[k])
            cls.append(np.full(t.size, _CLASSES.index(cm.workload_class)))
        if not submit:
            return ()
        submit, duration, n_gpus, share, cls = (np.concatenate(x) for x in (submit, duration, n_gpus, share, cls))
        order = np.lexsort((np.arange(submit.size), cls, submit))
        jobs = []
        for k, i in enumerate(order.tolist()):
            wc = _CLASSES[int(cls[i])]
            tpl = templates.get(wc, JobTemplate())
            s, d = int(submit[i]), int(duration[i])
            jobs.append(Job(job_id=f"{id_prefix}{k}", submit_time_s=s, duration_s=d, n_gpus=int(n_gpus[i]),
                            workload_class=wc, power_model=tpl.power_model, preemptible=tpl.preemptible,
                            checkpoint_interval_s=tpl.checkpoint_interval_s,
                            deadline_s=None if tpl.deadline_factor is None
                            else s + math.ceil(tpl.deadline_factor * d),
                            gpu_share=float(share[i])))
        return tuple(jobs)


def fit_workload(jobs: Iterable[Job], windows: Sequence[tuple[int, int]]) -> WorkloadModel:
    """A ``WorkloadModel`` fitted on the jobs submitted inside ``windows`` (sorted, non-overlapping [start, end)
    pairs in seconds: one for a plain split, several for alternating windows)."""
    windows = _check_windows(windows)
    inside = [j for j in jobs if any(s <= j.submit_time_s < e for s, e in windows)]
    if not inside:
        raise CalibrationError(f"no jobs submitted inside the windows {windows}: nothing to fit")
    models = []
    for wc in _CLASSES:
        js = [j for j in inside if j.workload_class is wc]
        if not js:
            continue
        pairs = [(j.n_gpus, j.gpu_share) for j in js]
        sizes = tuple(sorted(set(pairs)))
        counts = np.array([pairs.count(s) for s in sizes], dtype=np.float64)
        models.append(ClassModel(
            workload_class=wc,
            arrivals=fit_arrivals(np.array([j.submit_time_s for j in js], dtype=np.float64), windows),
            duration_s=LogKde.fit(np.array([j.duration_s for j in js], dtype=np.float64)),
            sizes=sizes, size_p=tuple((counts / counts.sum()).tolist())))
    return WorkloadModel(classes=tuple(models))


# -------------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True, eq=False)
class RequestModel:
    """A fitted LLM request stream: arrivals, prompt tokens, output tokens."""

    arrivals: ArrivalProcess
    context_tokens: LogKde
    generated_tokens: LogKde

    def generate(self, rng: np.random.Generator, start_s: float, end_s: float) -> RequestStream:
        """Requests arriving in [start_s, end_s) (seconds in the fitted stream's frame)."""
        if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
            raise CalibrationError(f"generate: need 0 <= start_s < end_s, got {start_s!r}, {end_s!r}")
        t = self.arrivals.times(rng, start_s, end_s)
        t = t[np.concatenate(([True], np.diff(t) > 0))]  # a gap below float resolution merges two arrivals
        ctx = np.maximum(1, np.rint(self.context_tokens.sample(rng, t.size))).astype(np.int64)
        gen = np.maximum(1, np.rint(self.generated_tokens.sample(rng, t.size))).astype(np.int64)
        return RequestStream(arrival_s=t, context_tokens=ctx, generated_tokens=gen)


def fit_requests(stream: RequestStream, windows: Sequence[tuple[float, float]]) -> RequestModel:
    """A ``RequestModel`` fitted on the requests of ``stream`` arriving inside ``windows`` (seconds)."""
    windows = _check_windows(windows)
    a = stream.arrival_s
    inside = np.zeros(a.size, bool)
    for s, e in windows:
        inside |= (a >= s) & (a < e)
    if not inside.any():
        raise CalibrationError(f"no requests inside the windows {windows}: nothing to fit")
    return RequestModel(arrivals=fit_arrivals(a, windows),
                        context_tokens=LogKde.fit(np.maximum(stream.context_tokens[inside], 1)),
                        generated_tokens=LogKde.fit(np.maximum(stream.generated_tokens[inside], 1)))
