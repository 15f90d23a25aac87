"""GPU power models per workload class, and the exact electrical energy a GPU draws over an interval.

A *model* holds the parameters of a workload class (``power_fit`` fits them from a trace); ``model.run(...)``
is that workload running on one GPU from ``t_start_s`` to ``t_stop_s``. A run gives its power at any time
(``power_W``) and the exact integral of that power over any interval (``energy_J``): the engine asks for the
energy of each plant step [t, t + h), and the integral is exact for the model, over square-wave edges,
checkpoint dips, request phases and the job's start and stop, not a sample. Before ``t_start_s`` and from
``t_stop_s`` on, a GPU with this run draws the model's idle power ``P_idle_W``.

**training** (``TrainingPower``): from the job's start, the job alternates ``ckpt_interval_s`` of training
and ``ckpt_duration_s`` of checkpointing at ``P_ckpt_W`` (no checkpoints when the interval is infinite).
Training is an iteration square wave of period ``period_s``: ``P_high_W`` (compute) for the first
``duty * period_s`` of each period, then ``P_low_W`` (communication, data loading). Each training segment
starts a fresh iteration at its beginning (training pauses while the checkpoint is written).

**inference** (``InferencePower``): a server waits at ``P_wait_W``; each request arriving at ``a`` is in
prefill during [a, a + prefill) and in decode during [a + prefill, a + prefill + decode). The GPU draws
``P_prefill_W`` while any request is in prefill, else ``P_decode_W`` while any is in decode, else
``P_wait_W``. Arrivals are given (the workload generator's requests) or drawn as a Poisson stream of
``rate_per_s`` from the run's seed.

**Noise**: both classes add ``Ar1Noise`` while the job runs: a stationary AR(1) process with standard
deviation ``sigma_W`` and correlation time ``tau_s``, held constant on cells of ``dt_s`` anchored at the
job's start (cell k covers [t_start + k dt, t_start + (k+1) dt)). Cell values are drawn from the run's seed
in blocks of B cells; block b is the AR(1) recursion run over the innovations of blocks b-1 and b, starting
from zero at the start of block b-1. B is chosen so that phi**B < 1e-17 (phi = exp(-dt/tau)): what a block
forgets is below double precision, so the cells form one AR(1) sequence, any cell can be reached without
generating the cells before it, and the same seed gives the same noise whatever intervals are asked. The
noise integral is the exact sum over the cells, so energies over sub-intervals add up to the energy over
the whole interval. The noise is not clipped: keep ``sigma_W`` well below the levels.

Sign convention: power and energy are drawn from the supply, positive. Units in names, SI throughout.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache, cached_property
from typing import ClassVar, Iterable, Mapping

import numpy as np
from scipy.signal import lfilter

from ..errors import ScenarioError

MODEL_FORMAT = "twin-power-model"
MODEL_VERSION = 1
_NOISE_BLOCK_MIN = 4096
_NOISE_FORGET = 1e-17


def _finite(name: str, x: float, lo: float = -math.inf, lo_open: bool = False) -> None:
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x < lo or (lo_open and x == lo):
        cmp = ">" if lo_open else ">="
        raise ValueError(f"{name} must be a finite number {cmp} {lo}, got {x!r}")


# --- noise ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ar1Noise:
    """A stationary AR(1) power fluctuation, piecewise constant on cells of ``dt_s`` (see the module doc)."""

    sigma_W: float = 0.0    # stationary standard deviation
    tau_s: float = 1.0      # correlation time: lag-k correlation exp(-k dt_s / tau_s)
    dt_s: float = 0.1       # cell length

    def __post_init__(self):
        _finite("sigma_W", self.sigma_W, 0.0)
        _finite("tau_s", self.tau_s, 0.0, lo_open=True)
        _finite("dt_s", self.dt_s, 0.0, lo_open=True)

    @cached_property
    def phi(self) -> float:
        return math.exp(-self.dt_s / self.tau_s)

    @cached_property
    def block_cells(self) -> int:
        phi = self.phi
        if phi < 1e-300:
            return _NOISE_BLOCK_MIN
        return max(_NOISE_BLOCK_MIN, math.ceil(math.log(_NOISE_FORGET) / math.log(phi)))

    def with_dt(self, dt_s: float) -> Ar1Noise:
        """The same process (sigma, tau) on another cell length, e.g. coarser for year-long runs."""
        return Ar1Noise(self.sigma_W, self.tau_s, dt_s)

    def cells_W(self, seed: int, k0: int, k1: int) -> np.ndarray:
        """The values of cells k0 .. k1-1 (k0 >= 0)."""
        if k1 <= k0:
            return np.zeros(0)
        B, phi = self.block_cells, self.phi
        parts = [_unit_block(seed, b, phi, B)[max(k0 - b * B, 0):min(k1 - b * B, B)]
                 for b in range(k0 // B, (k1 - 1) // B + 1)]
        return self.sigma_W * np.concatenate(parts)

    def value_W(self, seed: int, u_s: np.ndarray) -> np.ndarray:
        """The noise at times u_s >= 0 after the anchor."""
        u = np.asarray(u_s, dtype=float)
        out = np.zeros(u.shape)
        if self.sigma_W == 0.0 or u.size == 0:
            return out
        k = np.floor(u / self.dt_s).astype(np.int64)
        B, phi = self.block_cells, self.phi
        blocks = k // B
        for b in np.unique(blocks):
            m = blocks == b
            out[m] = _unit_block(seed, int(b), phi, B)[k[m] - b * B]
        return self.sigma_W * out

    def integral_J(self, seed: int, u0_s: float, u1_s: float) -> float:
        """The exact integral of the noise over [u0_s, u1_s), times after the anchor (0 <= u0 <= u1)."""
        if self.sigma_W == 0.0 or u1_s <= u0_s:
            return 0.0
        dt, B, phi = self.dt_s, self.block_cells, self.phi
        k0 = int(math.floor(u0_s / dt))
        k1 = max(int(math.ceil(u1_s / dt)), k0 + 1)
        total = 0.0
        for b in range(k0 // B, (k1 - 1) // B + 1):
            lo, hi = max(k0 - b * B, 0), min(k1 - b * B, B)
            if lo == 0 and hi == B:
                total += _unit_block_sum(seed, b, phi, B)
            else:
                total += float(_unit_block(seed, b, phi, B)[lo:hi].sum())
        total *= dt
        first = _unit_block(seed, k0 // B, phi, B)[k0 % B]
        last = _unit_block(seed, (k1 - 1) // B, phi, B)[(k1 - 1) % B]
        total -= first * (u0_s - k0 * dt) + last * (k1 * dt - u1_s)
        return self.sigma_W * total


def _innovations(seed: int, b: int, B: int) -> np.ndarray:
    if b < 0:   # block -1 only feeds block 0's start: draw it from a stream no block uses
        return np.random.default_rng(np.random.SeedSequence([seed, 0, 1])).standard_normal(B)
    return np.random.default_rng(np.random.SeedSequence([seed, b + 1])).standard_normal(B)


@lru_cache(maxsize=256)
def _unit_block(seed: int, b: int, phi: float, B: int) -> np.ndarray:
    e = np.concatenate([_innovations(seed, b - 1, B), _innovations(seed, b, B)])
    x = lfilter([math.sqrt(1.0 - phi * phi)], [1.0, -phi], e)
    out = np.ascontiguousarray(x[B:])
    out.flags.writeable = False
    return out


@lru_cache(maxsize=4096)
def _unit_block_sum(seed: int, b: int, phi: float, B: int) -> float:
    return float(_unit_block(seed, b, phi, B).sum())


# --- runs: what the engine integrates ---------------------------------------------------------------------

class _Run:
    """The shared part of a job's run on one GPU: idle outside [t_start_s, t_stop_s), model and noise inside."""

    model: object
    t_start_s: float
    t_stop_s: float
    seed: int

    def _check_window(self) -> None:
        _finite("t_start_s", self.t_start_s)
        if not (self.t_stop_s > self.t_start_s):
            raise ValueError(f"t_stop_s ({self.t_stop_s}) must be after t_start_s ({self.t_start_s})")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def power_W(self, t_s) -> np.ndarray:
        """The power at times t_s (right-continuous: the value on [t, t + dt))."""
        t = np.asarray(t_s, dtype=float)
        out = np.full(t.shape, float(self.model.P_idle_W))
        m = (t >= self.t_start_s) & (t < self.t_stop_s)
        if m.any():
            u = t[m] - self.t_start_s
            out[m] = self._det_power(u) + self.model.noise.value_W(self.seed, u)
        return out

    def excess_energy_J(self, t0_s: float, t1_s: float) -> float:
        """The integral of (power - P_idle_W) over [t0_s, t1_s): zero outside the job."""
        if not t1_s >= t0_s:
            raise ValueError(f"interval end {t1_s} before its start {t0_s}")
        a, b = max(t0_s, self.t_start_s), min(t1_s, self.t_stop_s)
        if b <= a:
            return 0.0
        u0, u1 = a - self.t_start_s, b - self.t_start_s
        return (self._det_integral(u0, u1) - self.model.P_idle_W * (b - a)
                + self.model.noise.integral_J(self.seed, u0, u1))

    def energy_J(self, t0_s: float, t1_s: float) -> float:
        """The exact energy the GPU draws over [t0_s, t1_s): idle outside the job, the model inside."""
        return self.model.P_idle_W * (t1_s - t0_s) + self.excess_energy_J(t0_s, t1_s)


# --- training ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingPower:
    """A training job: iteration square wave, periodic checkpoint dips, AR(1) noise (see the module doc)."""

    P_idle_W: float
    P_high_W: float
    P_low_W: float
    duty: float                          # fraction of each period at P_high_W, in (0, 1]
    period_s: float
    P_ckpt_W: float = 0.0
    ckpt_interval_s: float = math.inf    # training time between checkpoints; inf: none
    ckpt_duration_s: float = 0.0
    noise: Ar1Noise = field(default_factory=Ar1Noise)
    kind: ClassVar[str] = "training"

    def __post_init__(self):
        for name in ("P_idle_W", "P_high_W", "P_low_W", "P_ckpt_W", "ckpt_duration_s"):
            _finite(name, getattr(self, name), 0.0)
        _finite("period_s", self.period_s, 0.0, lo_open=True)
        if not (0.0 < self.duty <= 1.0):
            raise ValueError(f"duty must be in (0, 1], got {self.duty!r}")
        if not (self.ckpt_interval_s > 0):
            raise ValueError(f"ckpt_interval_s must be > 0 (inf for none), got {self.ckpt_interval_s!r}")
        if math.isinf(self.ckpt_interval_s) and self.ckpt_duration_s != 0.0:
            raise ValueError("ckpt_duration_s must be 0 when there are no checkpoints (ckpt_interval_s = inf)")

    @property
    def has_checkpoints(self) -> bool:
        return math.isfinite(self.ckpt_interval_s) and self.ckpt_duration_s > 0

    def square_mean_W(self) -> float:
        return self.duty * self.P_high_W + (1.0 - self.duty) * self.P_low_W

    def mean_power_W(self) -> float:
        """The long-run mean power while the job runs (noise has zero mean)."""
        if not self.has_checkpoints:
            return self.square_mean_W()
        I, d = self.ckpt_interval_s, self.ckpt_duration_s
        return (I * self.square_mean_W() + d * self.P_ckpt_W) / (I + d)

    def run(self, t_start_s: float, t_stop_s: float = math.inf, seed: int = 0) -> TrainingRun:
        return TrainingRun(self, float(t_start_s), float(t_stop_s), seed)

    # under a power cap: the clip rule of the cluster's stand-in wave (twin.cluster.sim.SquareWavePower); the
    # energy is the same run with its low level clipped at the cap (twin.cluster.sim.FittedPower)

    def cap_stretch(self, cap_W: float) -> float:
        """Run time under the cap over the uncapped one: the compute phase draws at most the cap and slows by
        P_high / cap (its energy per unit of work unchanged); communication and checkpoints keep their speed."""
        if cap_W >= self.P_high_W:
            return 1.0
        compute = self.duty
        if self.has_checkpoints:
            compute *= self.ckpt_interval_s / (self.ckpt_interval_s + self.ckpt_duration_s)
        return 1.0 + compute * (self.P_high_W / cap_W - 1.0)

    # deterministic part, in job time u >= 0 ---------------------------------------------------------------

    def _sq_int(self, a: float, b: float) -> float:
        """Integral of the square wave over [a, b), 0 <= a <= b, positions within a training segment."""
        T, DT = self.period_s, self.duty * self.period_s
        na, nb = math.floor(a / T), math.floor(b / T)
        ra, rb = min(max(a - na * T, 0.0), T), min(max(b - nb * T, 0.0), T)

        def part(r):
            return self.P_high_W * min(r, DT) + self.P_low_W * max(r - DT, 0.0)

        return (nb - na) * part(T) + part(rb) - part(ra)

    def _seg_int(self, a: float, b: float) -> float:
        """Integral over [a, b) within one checkpoint cycle (training, then the dip)."""
        I = self.ckpt_interval_s
        out = self._sq_int(a, min(b, I)) if a < I else 0.0
        if b > I:
            out += self.P_ckpt_W * (b - max(a, I))
        return out

    def _det_integral(self, u0: float, u1: float) -> float:
        if not self.has_checkpoints:
            return self._sq_int(u0, u1)
        C = self.ckpt_interval_s + self.ckpt_duration_s
        m0, m1 = math.floor(u0 / C), math.floor(u1 / C)
        r0, r1 = min(max(u0 - m0 * C, 0.0), C), min(max(u1 - m1 * C, 0.0), C)
        if m0 == m1:
            return self._seg_int(r0, r1)
        return self._seg_int(r0, C) + (m1 - m0 - 1) * self._seg_int(0.0, C) + self._seg_int(0.0, r1)

    def _det_power(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        r = u
        dip = np.zeros(u.shape, dtype=bool)
        if self.has_checkpoints:
            C = self.ckpt_interval_s + self.ckpt_duration_s
            r = u - np.floor(u / C) * C
            dip = r >= self.ckpt_interval_s
        phase = r - np.floor(r / self.period_s) * self.period_s
        out = np.where(phase < self.duty * self.period_s, self.P_high_W, self.P_low_W)
        return np.where(dip, self.P_ckpt_W, out)


@dataclass(frozen=True)
class TrainingRun(_Run):
    """A training job on one GPU from t_start_s to t_stop_s (inf: still running), noise from ``seed``."""

    model: TrainingPower
    t_start_s: float
    t_stop_s: float = math.inf
    seed: int = 0

    def __post_init__(self):
        self._check_window()

    def _det_power(self, u):
        return self.model._det_power(u)

    def _det_integral(self, u0, u1):
        return self.model._det_integral(u0, u1)


# --- inference --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InferencePower:
    """An inference server: wait, prefill and decode levels driven by request arrivals (see the module doc)."""

    P_idle_W: float
    P_wait_W: float
    P_prefill_W: float
    P_decode_W: float
    prefill_s: float        # mean prefill time of a request
    decode_s: float         # mean decode time of a request
    rate_per_s: float       # mean request arrival rate
    noise: Ar1Noise = field(default_factory=Ar1Noise)
    kind: ClassVar[str] = "inference"

    def __post_init__(self):
        for name in ("P_idle_W", "P_wait_W", "P_prefill_W", "P_decode_W", "prefill_s", "decode_s", "rate_per_s"):
            _finite(name, getattr(self, name), 0.0)

    def busy_fractions(self) -> tuple[float, float]:
        """(fraction of time in prefill, fraction in prefill or decode) for Poisson arrivals: M/G/inf."""
        lam = self.rate_per_s
        return 1.0 - math.exp(-lam * self.prefill_s), 1.0 - math.exp(-lam * (self.prefill_s + self.decode_s))

    def mean_power_W(self) -> float:
        bp, b = self.busy_fractions()
        return bp * self.P_prefill_W + (b - bp) * self.P_decode_W + (1.0 - b) * self.P_wait_W

    def cap_stretch(self, cap_W: float) -> float:
        """A server runs as long as its requests come: a cap does not lengthen it."""
        return 1.0

    def cap_energy_ratio(self, cap_W: float) -> float:
        """Energy under the cap over the uncapped one: each level clipped at the cap (the time in prefill and
        decode is kept: requests take a little longer under a cap, which this leaves out)."""
        base = self.mean_power_W()
        if base <= 0.0:
            return 1.0
        bp, b = self.busy_fractions()
        c = cap_W
        return (bp * min(self.P_prefill_W, c) + (b - bp) * min(self.P_decode_W, c)
                + (1.0 - b) * min(self.P_wait_W, c)) / base

    def run(self, t_start_s: float, t_stop_s: float = math.inf, seed: int = 0, arrivals_s=None,
            prefill_s=None, decode_s=None) -> InferenceRun:
        """A server run; requests at ``arrivals_s`` (absolute times in [t_start_s, t_stop_s)), or Poisson
        arrivals drawn from ``seed`` when None (then t_stop_s must be finite). Per-request prefill and decode
        times default to the model's means."""
        t_start_s, t_stop_s = float(t_start_s), float(t_stop_s)
        if arrivals_s is None:
            if not math.isfinite(t_stop_s):
                raise ValueError("Poisson arrivals need a finite t_stop_s")
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0, 2]))
            n = rng.poisson(self.rate_per_s * (t_stop_s - t_start_s))
            arrivals_s = np.sort(rng.uniform(t_start_s, t_stop_s, n))
        a = np.asarray(arrivals_s, dtype=float)
        p = np.full(a.shape, self.prefill_s) if prefill_s is None else np.asarray(prefill_s, dtype=float)
        d = np.full(a.shape, self.decode_s) if decode_s is None else np.asarray(decode_s, dtype=float)
        return InferenceRun(self, t_start_s, t_stop_s, seed, _frozen(a), _frozen(p), _frozen(d))


@dataclass(frozen=True, eq=False)
class InferenceRun(_Run):
    """An inference server on one GPU with given requests; power is piecewise constant between their events."""

    model: InferencePower
    t_start_s: float
    t_stop_s: float
    seed: int
    arrivals_s: np.ndarray
    prefill_s: np.ndarray
    decode_s: np.ndarray
    _edges_s: np.ndarray = field(init=False, repr=False)
    _levels_W: np.ndarray = field(init=False, repr=False)
    _cum_J: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self._check_window()
        a, p, d = self.arrivals_s, self.prefill_s, self.decode_s
        if not (a.ndim == 1 and p.shape == a.shape and d.shape == a.shape):
            raise ValueError("arrivals_s, prefill_s and decode_s must be 1-d arrays of one length")
        if a.size and (not np.all(np.isfinite(a)) or a.min() < self.t_start_s or a.max() >= self.t_stop_s):
            raise ValueError("request arrivals must be finite and within [t_start_s, t_stop_s)")
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(d)) and np.all(p >= 0) and np.all(d >= 0)):
            raise ValueError("prefill and decode times must be finite and >= 0")
        u = a - self.t_start_s
        times = np.concatenate([u, u + p, u + p, u + p + d])
        dpre = np.concatenate([np.ones(u.size), -np.ones(u.size), np.zeros(2 * u.size)])
        ddec = np.concatenate([np.zeros(2 * u.size), np.ones(u.size), -np.ones(u.size)])
        order = np.argsort(times, kind="stable")
        times, dpre, ddec = times[order], dpre[order], ddec[order]
        edges, idx = np.unique(times, return_index=True)
        n_pre = np.cumsum(dpre)[np.r_[idx[1:] - 1, times.size - 1]] if times.size else np.zeros(0)
        n_dec = np.cumsum(ddec)[np.r_[idx[1:] - 1, times.size - 1]] if times.size else np.zeros(0)
        m = self.model
        lev = np.where(n_pre > 0.5, m.P_prefill_W, np.where(n_dec > 0.5, m.P_decode_W, m.P_wait_W))
        keep = edges > 0.0
        edges = np.r_[0.0, edges[keep]]
        first = lev[~keep][-1] if (~keep).any() else m.P_wait_W
        levels = np.r_[first, lev[keep]]
        cum = np.r_[0.0, np.cumsum(levels[:-1] * np.diff(edges))]
        object.__setattr__(self, "_edges_s", _frozen(edges))
        object.__setattr__(self, "_levels_W", _frozen(levels))
        object.__setattr__(self, "_cum_J", _frozen(cum))

    def _det_power(self, u):
        i = np.searchsorted(self._edges_s, u, side="right") - 1
        return self._levels_W[i]

    def _det_integral(self, u0, u1):
        i0 = int(np.searchsorted(self._edges_s, u0, side="right")) - 1
        i1 = int(np.searchsorted(self._edges_s, u1, side="right")) - 1
        if i0 == i1:
            return float(self._levels_W[i0] * (u1 - u0))
        return (float(self._cum_J[i1] - self._cum_J[i0 + 1])
                + float(self._levels_W[i0] * (self._edges_s[i0 + 1] - u0))
                + float(self._levels_W[i1] * (u1 - self._edges_s[i1])))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flags.writeable = False
    return a


# --- a GPU and a rack -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GpuLoad:
    """One GPU: idle at P_idle_W, and the jobs it ran or runs (windows must not overlap)."""

    P_idle_W: float
    runs: tuple = ()

    def __post_init__(self):
        _finite("P_idle_W", self.P_idle_W, 0.0)
        rs = sorted(self.runs, key=lambda r: r.t_start_s)
        for r0, r1 in zip(rs, rs[1:]):
            if r1.t_start_s < r0.t_stop_s:
                raise ValueError(f"job windows overlap on one GPU: [{r0.t_start_s}, {r0.t_stop_s}) and "
                                 f"[{r1.t_start_s}, {r1.t_stop_s})")
        object.__setattr__(self, "runs", tuple(rs))

    def power_W(self, t_s) -> np.ndarray:
        t = np.asarray(t_s, dtype=float)
        out = np.full(t.shape, float(self.P_idle_W))
        for r in self.runs:
            out += r.power_W(t) - r.model.P_idle_W
        return out

    def energy_J(self, t0_s: float, t1_s: float) -> float:
        if not t1_s >= t0_s:
            raise ValueError(f"interval end {t1_s} before its start {t0_s}")
        return self.P_idle_W * (t1_s - t0_s) + sum(r.excess_energy_J(t0_s, t1_s) for r in self.runs)


def rack_energy_J(gpus: Iterable[GpuLoad], t0_s: float, t1_s: float) -> float:
    """The exact electrical energy of a rack's GPUs over [t0_s, t1_s)."""
    return float(sum(g.energy_J(t0_s, t1_s) for g in gpus))


# --- model files ------------------------------------------------------------------------------------------

MODEL_CLASSES = {c.kind: c for c in (TrainingPower, InferencePower)}


def model_to_dict(model: TrainingPower | InferencePower) -> dict:
    """The model's parameters, units in the keys; an infinite checkpoint interval is written as null."""
    out: dict = {"kind": model.kind}
    for f in fields(model):
        v = getattr(model, f.name)
        if isinstance(v, Ar1Noise):
            out[f.name] = {"sigma_W": v.sigma_W, "tau_s": v.tau_s, "dt_s": v.dt_s}
        else:
            out[f.name] = None if (isinstance(v, float) and math.isinf(v)) else float(v)
    return out


def model_from_dict(d: Mapping, where: str) -> TrainingPower | InferencePower:
    """Build a model from ``model_to_dict``'s form; every problem is reported at once, with its path."""
    problems = []
    if not isinstance(d, Mapping):
        raise ScenarioError(f"{where}: expected a table of model parameters, found {type(d).__name__}")
    cls = MODEL_CLASSES.get(d.get("kind"))
    if cls is None:
        raise ScenarioError(f"{where}.kind: expected one of {sorted(MODEL_CLASSES)}, found {d.get('kind')!r}")
    names = {f.name: f for f in fields(cls)}
    for k in d:
        if k != "kind" and k not in names:
            problems.append(f"{where}.{k}: unknown key (expected {sorted(names)})")
    kwargs = {}
    for name, f in names.items():
        if name not in d:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append(f"{where}.{name}: missing")
            continue
        v = d[name]
        if name == "noise":
            nd = v if isinstance(v, Mapping) else None
            if nd is None or set(nd) != {"sigma_W", "tau_s", "dt_s"}:
                problems.append(f"{where}.noise: expected a table with sigma_W, tau_s, dt_s, found {v!r}")
                continue
            try:
                kwargs[name] = Ar1Noise(*(float(nd[k]) for k in ("sigma_W", "tau_s", "dt_s")))
            except (TypeError, ValueError) as e:
                problems.append(f"{where}.noise: {e}")
            continue
        if v is None and name == "ckpt_interval_s":
            kwargs[name] = math.inf
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            kwargs[name] = float(v)
        else:
            problems.append(f"{where}.{name}: expected a number, found {v!r}")
    if not problems:
        try:
            return cls(**kwargs)
        except ValueError as e:
            problems.append(f"{where}: {e}")
    raise ScenarioError("; ".join(problems))


def load_power_model(path: str | os.PathLike) -> TrainingPower | InferencePower:
    """Read the model from a power model file written by ``power_fit.fit_power``."""
    src = str(path)
    try:
        with open(src, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ScenarioError(f"{src}: cannot read the power model file: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ScenarioError(f"{src}: format: expected {MODEL_FORMAT!r}, found "
                            f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}")
    if doc.get("version") != MODEL_VERSION:
        raise ScenarioError(f"{src}: version: expected {MODEL_VERSION}, found {doc.get('version')!r}")
    return model_from_dict(doc.get("model"), f"{src}: model")
