"""Power-cap response of a GPU job: the mean power it draws and how much longer it runs under a power limit.

The model (a DVFS picture; one ``CapShape`` per GPU type, two numbers per workload):

* mean power at cap c:  P(c) = max(softmin(c, P_inf), P_floor), softmin(a, b) = (a^-n + b^-n)^(-1/n).
  ``P_inf_W`` is the workload's uncapped mean power. The knee is smooth (sharpness ``knee_n``) because the
  limiter clips the peaks of a fluctuating power before the mean reaches the cap; ``P_floor`` is the power
  at the lowest clock ``f_min`` (a cap below it is not met).
* relative clock f (1 uncapped): power is P_static + (P_inf - P_static) g(f), g(f) = f max(f, f_v)^2:
  dynamic power goes as f V^2 with the voltage V proportional to f above the voltage floor at clock ``f_v``
  (a cube law) and constant below it (linear). ``P_static_W`` does not scale with the clock. The limiter
  lowers the clock until the dynamic power fits the cap's budget above the static power:
  g(f) = softmin((c - P_static) / (P_inf - P_static), 1), with f >= f_min. A workload whose dynamic power is
  small against the budget is not slowed, and one with P_inf <= P_static never is (f = 1).
* time per unit of work: t(c) = t_inf (a / f + 1 - a): the compute-bound fraction a (``compute_fraction``)
  scales with the clock, the rest (memory, I/O, host) does not. stretch(c) = t(c) / t_inf.

Fitting (``fit_cap_shape``): the five shape parameters (knee_n, P_static_W, f_v, f_min, a) are shared by all
workloads of one GPU type and fitted by robust least squares (soft-L1 on log errors) on whole power-limit
sweeps. A workload enters only through its measurement at the highest cap: P_inf and t_inf are solved so
that the model reproduces the power and time measured there.

Predicting a workload not in the fit:
* ``from_max_cap`` (one point): its power and time at the highest cap give P_inf and t_inf; everything else
  comes from the shape.
* ``from_two_caps`` (two points): also one capped measurement; it sets the workload's own compute fraction
  a (closed form), the rest from the shape. ``leave_one_network_out`` takes the cap nearest 60 % of the
  power at the highest cap (``second_point``): clearly capped, yet above the lowest caps, where the clock
  sits at its floor and the shape is least sure (on the A40 the lowest cap, 100 W, makes a worse second
  point than none).

``leave_one_network_out`` fits the shape on all networks of a GPU type but one and predicts the held-out
network's sweeps at every cap that was not an input; ``leave_batch_sizes_out`` fits one shape per network on
every other batch size and predicts the others. The criterion is on the mean errors: single points are noisy
(in a quarter of the neighbouring cap pairs of a sweep the epoch time rises with the higher cap, by a median
3 % and up to 15 %), so no smooth response gets every point within 10 %. The measured data are the Zeus sweeps
(../shared/data/gpu_power_cap_zeus, ``load_zeus_sweeps``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationError, TraceError

ZEUS_COLUMNS = ("dataset", "network", "batch_size", "optimizer", "power_limit", "time_per_epoch", "average_power")
_FIXED_POINT_ITERATIONS = 60
_P0 = (6.0, 60.0, 0.6, 0.2, 0.8)
_LOWER = (1.0, 0.0, 0.05, 0.01, 0.0)
_UPPER = (50.0, 200.0, 1.0, 1.0, 1.0)
_LOSS_SCALE = 0.05     # soft-L1 scale on log errors: points off by more than ~5 % weigh less
SECOND_POINT_POWER_FRACTION = 0.6   # a clearly capped point, away from the clock floor where the shape is least sure


@dataclass(frozen=True, eq=False)
class CapSweep:
    """One workload's measured power-limit sweep on one GPU type, by increasing cap."""

    workload: str           # dataset/network/batch_size/optimizer
    network: str
    cap_W: np.ndarray
    t_s: np.ndarray         # time per unit of work (an epoch)
    P_W: np.ndarray         # mean power


def load_zeus_sweeps(path: str | os.PathLike) -> list[CapSweep]:
    """The sweeps of a Zeus ``summary_power_*.csv`` (columns as in ``ZEUS_COLUMNS``), one per workload."""
    import pandas as pd

    src = str(path)
    try:
        d = pd.read_csv(src)
    except (OSError, ValueError) as e:
        raise TraceError(f"{src}: row -, column -: cannot read the CSV: {e}") from e
    for c in ZEUS_COLUMNS:
        if c not in d.columns:
            raise TraceError(f"{src}: row -, column {c!r}: missing column (found {list(d.columns)})")
    for c in ("power_limit", "time_per_epoch", "average_power"):
        v = pd.to_numeric(d[c], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            i = int(bad[0])
            raise TraceError(f"{src}: row {i + 1}, column {c!r}: expected a positive number, found {d[c].iloc[i]!r}")
        d[c] = v
    keys = ["dataset", "network", "batch_size", "optimizer"]
    dup = d.duplicated(keys + ["power_limit"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise TraceError(f"{src}: row {i + 1}, column 'power_limit': a second measurement of the same workload "
                         f"at the same cap")
    out = []
    for k, g in d.groupby(keys, sort=True):
        g = g.sort_values("power_limit")
        if len(g) < 2:
            continue
        out.append(CapSweep("/".join(str(x) for x in k), str(k[1]), g.power_limit.to_numpy(float),
                            g.time_per_epoch.to_numpy(float), g.average_power.to_numpy(float)))
    return out


# --- the model ------------------------------------------------------------------------------------------------

def _softmin(a, b, n):
    return (np.asarray(a, float) ** -n + np.asarray(b, float) ** -n) ** (-1.0 / n)


def _g(f, fv):
    return f * np.maximum(f, fv) ** 2


def _g_inv(u, fv):
    u = np.clip(u, 0.0, 1.0)
    return np.where(u >= fv ** 3, np.cbrt(u), u / (fv * fv))


def _predict(p, cap, P_inf, a):
    """(mean power, relative clock, stretch) at caps ``cap`` for uncapped power P_inf and compute fraction a
    (arrays broadcast)."""
    n, Ps, fv, fmin, _ = p
    cap, P_inf, a = np.asarray(cap, float), np.asarray(P_inf, float), np.asarray(a, float)
    dyn = P_inf - Ps
    busy = dyn > 0
    dyn1 = np.where(busy, dyn, 1.0)
    floor = np.where(busy, Ps + dyn1 * _g(fmin, fv), 0.0)
    P = np.maximum(_softmin(cap, P_inf, n), floor)
    budget = _softmin(np.maximum(cap - Ps, 1e-9 * dyn1) / dyn1, 1.0, n)
    f = np.where(busy, np.maximum(_g_inv(budget, fv), fmin), 1.0)
    return P, f, a / f + 1.0 - a


def _uncapped(p, cap_max, P_max, t_max, a):
    """P_inf and t_inf such that the model gives P_max and t_max at cap_max (vectorised fixed point)."""
    P_inf = np.asarray(P_max, float).copy()
    for _ in range(_FIXED_POINT_ITERATIONS):
        P, _, _ = _predict(p, cap_max, P_inf, a)
        P_inf = P_inf * P_max / P
    _, _, s = _predict(p, cap_max, P_inf, a)
    return P_inf, np.asarray(t_max, float) / s


@dataclass(frozen=True)
class CapShape:
    """The shared power-cap parameters of one GPU type (see the module doc)."""

    knee_n: float
    P_static_W: float
    f_voltage_floor: float
    f_min: float
    compute_fraction: float

    @property
    def params(self) -> tuple[float, ...]:
        return (self.knee_n, self.P_static_W, self.f_voltage_floor, self.f_min, self.compute_fraction)

    def response(self, P_inf_W: float, t_inf_s: float, compute_fraction: float | None = None) -> CapResponse:
        a = self.compute_fraction if compute_fraction is None else compute_fraction
        return CapResponse(self, float(P_inf_W), float(t_inf_s), float(a))

    def from_max_cap(self, cap_W: float, P_W: float, t_s: float) -> CapResponse:
        """A workload known only by its mean power and time at the highest cap."""
        P_inf, t_inf = _uncapped(self.params, cap_W, P_W, t_s, self.compute_fraction)
        return self.response(float(P_inf), float(t_inf))

    def from_two_caps(self, top: tuple[float, float, float], low: tuple[float, float, float]) -> CapResponse:
        """A workload known by (cap_W, P_W, t_s) at the highest cap and at one lower cap: the lower point sets
        its compute fraction. Neither P_inf nor the clock depends on it, so the fraction has a closed form."""
        p = self.params
        P_inf, _ = _uncapped(p, top[0], top[1], top[2], self.compute_fraction)
        _, f_top, _ = _predict(p, top[0], P_inf, 1.0)
        _, f_low, _ = _predict(p, low[0], P_inf, 1.0)
        A, B, r = 1.0 / float(f_low) - 1.0, 1.0 / float(f_top) - 1.0, low[2] / top[2]
        den = A - r * B
        a = float(np.clip((r - 1.0) / den, 0.0, 1.0)) if abs(den) > 1e-9 else self.compute_fraction
        _, t_inf = _uncapped(p, top[0], top[1], top[2], a)
        return self.response(float(P_inf), float(t_inf), a)


@dataclass(frozen=True)
class CapResponse:
    """One workload on one GPU type: mean power and run-time stretch at any cap."""

    shape: CapShape
    P_inf_W: float          # uncapped mean power
    t_inf_s: float          # uncapped time per unit of work
    compute_fraction: float

    def power_W(self, cap_W):
        return _predict(self.shape.params, cap_W, self.P_inf_W, self.compute_fraction)[0]

    def clock(self, cap_W):
        """Clock relative to the uncapped clock."""
        return _predict(self.shape.params, cap_W, self.P_inf_W, self.compute_fraction)[1]

    def stretch(self, cap_W):
        """Run time at the cap over the uncapped run time (>= 1)."""
        return _predict(self.shape.params, cap_W, self.P_inf_W, self.compute_fraction)[2]

    def time_s(self, cap_W):
        return self.t_inf_s * self.stretch(cap_W)


# --- fitting and held-out checks ------------------------------------------------------------------------------

def fit_cap_shape(sweeps: list[CapSweep]) -> CapShape:
    """Fit the shared shape on whole sweeps; each sweep enters through its highest-cap point (module doc)."""
    from scipy.optimize import least_squares

    if len(sweeps) < 2:
        raise CalibrationError(f"fitting a power-cap shape needs at least 2 sweeps, got {len(sweeps)}")
    cap = np.concatenate([s.cap_W for s in sweeps])
    t = np.concatenate([s.t_s for s in sweeps])
    P = np.concatenate([s.P_W for s in sweeps])
    grp = np.concatenate([np.full(s.cap_W.size, i) for i, s in enumerate(sweeps)])
    top = np.array([[s.cap_W[-1], s.P_W[-1], s.t_s[-1]] for s in sweeps])

    def resid(p):
        P_inf, t_inf = _uncapped(p, top[:, 0], top[:, 1], top[:, 2], p[4])
        Pp, _, s = _predict(p, cap, P_inf[grp], p[4])
        return np.r_[np.log(Pp / P), np.log(t_inf[grp] * s / t)]

    res = least_squares(resid, _P0, bounds=(_LOWER, _UPPER), loss="soft_l1", f_scale=_LOSS_SCALE)
    if not res.success or not np.all(np.isfinite(res.x)):
        raise CalibrationError(f"the power-cap shape fit did not converge: {res.message}")
    return CapShape(*(float(x) for x in res.x))


@dataclass(frozen=True)
class HeldOutPoint:
    network: str
    workload: str
    cap_W: float
    P_measured_W: float
    P_predicted_W: float
    t_measured_s: float
    t_predicted_s: float

    @property
    def P_rel_err(self) -> float:
        return abs(self.P_predicted_W / self.P_measured_W - 1.0)

    @property
    def t_rel_err(self) -> float:
        return abs(self.t_predicted_s / self.t_measured_s - 1.0)


def second_point(s: CapSweep) -> int:
    """The index of the capped measurement used with the highest cap: the cap nearest
    ``SECOND_POINT_POWER_FRACTION`` of the power drawn at the highest cap."""
    return int(np.argmin(np.abs(s.cap_W[:-1] - SECOND_POINT_POWER_FRACTION * s.P_W[-1])))


def fit_folds(sweeps: list[CapSweep]) -> dict[str, CapShape]:
    """For each network, the shape fitted on the sweeps of all the other networks."""
    return {net: fit_cap_shape([s for s in sweeps if s.network != net]) for net in sorted({s.network for s in sweeps})}


def leave_one_network_out(sweeps: list[CapSweep], two_points: bool = False,
                          folds: dict[str, CapShape] | None = None) -> list[HeldOutPoint]:
    """For each network: with the shape fitted on the other networks' sweeps (``fit_folds``), predict this
    network's sweeps from their highest cap (and, with ``two_points``, their ``second_point``), at every cap
    that was not an input."""
    folds = fit_folds(sweeps) if folds is None else folds
    out = []
    for net, shape in folds.items():
        for s in (s for s in sweeps if s.network == net):
            top = (s.cap_W[-1], s.P_W[-1], s.t_s[-1])
            if two_points:
                j = second_point(s)
                r = shape.from_two_caps(top, (s.cap_W[j], s.P_W[j], s.t_s[j]))
                idx = [i for i in range(s.cap_W.size - 1) if i != j]
            else:
                r = shape.from_max_cap(*top)
                idx = range(0, s.cap_W.size - 1)
            out += _held_out_points(net, s, r, idx)
    return out


def _held_out_points(network: str, s: CapSweep, r: CapResponse, idx) -> list[HeldOutPoint]:
    return [HeldOutPoint(network, s.workload, float(s.cap_W[i]), float(s.P_W[i]), float(r.power_W(s.cap_W[i])),
                         float(s.t_s[i]), float(r.time_s(s.cap_W[i]))) for i in idx]


def _batch_size(s: CapSweep) -> int:
    return int(s.workload.split("/")[2])


def leave_batch_sizes_out(sweeps: list[CapSweep]) -> list[HeldOutPoint]:
    """For each network: its batch sizes in increasing order, the 1st, 3rd, ... fitted (every sweep of them: all
    datasets and optimizers), each sweep of the others predicted from its highest cap at every other cap."""
    out = []
    for net in sorted({s.network for s in sweeps}):
        mine = [s for s in sweeps if s.network == net]
        sizes = sorted({_batch_size(s) for s in mine})
        fitted_sizes = set(sizes[0::2])
        fitted = [s for s in mine if _batch_size(s) in fitted_sizes]
        held = [s for s in mine if _batch_size(s) not in fitted_sizes]
        if len(fitted) < 2 or not held:
            continue
        shape = fit_cap_shape(fitted)
        for s in held:
            out += _held_out_points(net, s, shape.from_max_cap(s.cap_W[-1], s.P_W[-1], s.t_s[-1]),
                                    range(s.cap_W.size - 1))
    return out


def summarize(points: list[HeldOutPoint]) -> dict:
    """Mean and largest relative errors, and the share of points within 10 %, of power and time."""
    eP = np.array([p.P_rel_err for p in points])
    et = np.array([p.t_rel_err for p in points])
    return {"n_points": int(eP.size),
            "P_mean_rel_err": float(eP.mean()), "P_max_rel_err": float(eP.max()),
            "P_within_10pct": float(np.mean(eP <= 0.1)),
            "t_mean_rel_err": float(et.mean()), "t_max_rel_err": float(et.max()),
            "t_within_10pct": float(np.mean(et <= 0.1))}
