"""Fit a GPU power model to a measured power trace, check the fit, and the ``twin fit-power`` command.

**Training** (``fit_training``), on one GPU's samples (any sampling, gaps allowed):

1. The job is the span from the first to the last sample above the midpoint of the trace's 1st and 99th
   percentiles, widened over neighbouring samples clearly above idle. ``P_idle_W`` is the median of the
   samples outside the span (a trace needs ``MIN_IDLE_S`` of idle before or after the job).
2. Levels: an exact 1-D k-means (a dynamic programme on a weighted histogram, then Lloyd steps) with three
   clusters. If all three are separate levels (each gap at least ``LEVEL_SEPARATION`` times the clusters'
   spread), runs of at least ``DIP_MIN_SAMPLES`` samples in the lowest are checkpoint dips: ``P_ckpt_W`` is
   their time-weighted mean, ``ckpt_duration_s`` the median dip length, ``ckpt_interval_s`` the median
   training time between dips (one dip: the time from the job's start to it). A checkpoint that drops to the
   low phase's level (real traces: both leave the GPU waiting at near-idle power) is no level of its own;
   then runs below the two-cluster threshold longer than ``DIP_LENGTH_FACTOR`` times the median low run
   (at least ``MIN_PERIODS`` runs) are the dips.
3. On the other samples of the span, two clusters: ``P_high_W`` and ``P_low_W`` are their medians; ``duty``
   is set so that the model's mean power equals the time-weighted mean of those samples (the energy is
   matched whatever the sampling does to individual edges). When the two clusters are not separate levels,
   the job draws a constant power: duty 1 and high = low = that mean.
4. Period: the samples are put on a uniform grid (nearest sample; gaps and dips filled with the mean), a
   Hann-windowed, zero-padded FFT gives the spectrum between ``MIN_PERIODS`` periods per trace and the
   Nyquist frequency. The fundamental is the lowest f_peak / k (k = 1..8) that still holds a peak of at least
   ``SUBHARMONIC_POWER`` of the highest peak: for duty cycles near 0.1 or 0.9 a square wave's second
   harmonic is as strong as its fundamental. The bin is refined by a parabola through the log spectrum.
5. Noise: the residuals of the samples from their level give an AR(1): the lag-k correlations of
   residuals k samples apart, over the lags until they fall to 1/e of the first, are fitted by
   A exp(-k dt / tau), so white measurement noise (A < 1) is kept out of the process; ``sigma_W`` is
   sqrt(A) times the robust spread of the residuals, ``dt_s`` the median sampling step.

**Inference** (``fit_inference``): the same span and idle; three levels (wait, decode, prefill) in the span.
With Poisson arrivals (an M/G/inf server: the formulas hold whatever the distribution of request times),
the prefill busy fraction is b_p = 1 - exp(-rate prefill_s), the busy fraction is
b = 1 - exp(-rate (prefill_s + decode_s)), and prefill bursts (busy periods of prefill) start at
rate exp(-rate prefill_s) per second: the burst count and b_p give the rate and prefill_s. The request time
prefill_s + decode_s is the one at which the requests seen (one per prefill burst, at its start) cover
exactly the measured busy time (inverting b instead scatters by tens of % on a trace of minutes: it sees one
realisation of the arrivals).

**Check** (``check_training``, ``check_inference``): on a window of a trace, the model's energy (noise-free)
against the measured energy (trapezoid), the model's levels against levels measured on that window alone,
and the model's period against the window's own spectral period. An inference model's energy is the model
driven by the window's own requests (prefill burst starts) where they can be told apart (at most
``RESOLVED_PREFILL_FRACTION`` of the time in prefill): the rate is the demand, not the GPU, and a window of a
minute holds so few requests that its energy scatters by tens of % around the model's expectation (reported
as ``energy_rel_sd``, with the error at the mean rate, ``expected_energy_rel_err``). A busier server's
bursts merge, but its window holds enough requests for the energy at the mean rate; criteria ``ENERGY_REL_TOL``,
``PLATEAU_REL_TOL``, ``PERIOD_REL_TOL``. ``fit_power`` reports two checks per GPU: *in-sample* (the written
model on the whole trace) and *holdout* (a model fitted on the first half of the job, idle and span taken
from the whole trace, checked on the second half, without the idle level): only the holdout can fail for
the right reasons.

Known limits (energy stays right in each case, the structure does not): readings averaged by the driver
over about as long as an iteration (``power.draw`` is a 1 s average on recent GPUs; record
``power.draw.instant``) blur the square wave, which then comes out as a constant or with compressed levels,
and checkpoint dips can be lost or taken for the low phase; a dip no deeper than the low level is taken as
low phases; samples exactly periodic with the iterations (no jitter at all) alias the duty cycle; a trace
needs ``MIN_IDLE_S`` of idle, and one that ends in a low phase longer than that takes it for idle.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CalibrationError, TraceError, TwinError
from .gpu_trace import GpuSeries, load_gpu_trace
from .jobs import WorkloadClass
from .power import (MODEL_FORMAT, MODEL_VERSION, Ar1Noise, InferencePower, TrainingPower, model_to_dict)

REQUEST_DRIVEN = {WorkloadClass.ONLINE_INFERENCE}
"""Classes fitted with the inference model (levels driven by request arrivals); every other class of
``twin.cluster.jobs.WorkloadClass`` (pre-training, fine-tuning, evaluation, batch inference, other) works
through batches in a periodic compute/communication cycle and is fitted with the training model."""
WORKLOAD_CLASSES = tuple(c.value for c in WorkloadClass)
ENERGY_REL_TOL = 0.05
PLATEAU_REL_TOL = 0.05
PERIOD_REL_TOL = 0.10
MIN_SAMPLES = 50
MIN_IDLE_SAMPLES = 5
MIN_IDLE_S = 3.0                # idle before and after the job together, so a final low phase is not idle
MIN_PERIODS = 4                 # a period needs at least this many repeats in the trace
SUBHARMONIC_POWER = 0.1         # a sub-harmonic peak this strong (power ratio) is the fundamental
LEVEL_SEPARATION = 5.0          # gap between level centres / larger within-level spread: separate levels
DIP_MIN_SAMPLES = 3
DIP_LENGTH_FACTOR = 3.0         # a low stretch this many times the median low phase is a checkpoint dip
GAP_FACTOR = 3.0                # a step longer than this many median steps is a gap
RESOLVED_PREFILL_FRACTION = 0.2  # up to this time share in prefill, a window's requests are told apart
LIMIT_REL = 0.03                # P_high within 3 % of the power limit: the job runs at its limit


# --- small tools ------------------------------------------------------------------------------------------

def _weights(t: np.ndarray) -> tuple[np.ndarray, float]:
    """Time weights of samples (hold until the next, gaps capped) and the median step."""
    d = np.diff(t)
    dt = float(np.median(d)) if d.size else 1.0
    w = np.minimum(np.r_[d, dt], GAP_FACTOR * dt)
    return w, dt


def _mad_sigma(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else 0.0


def _kmeans_1d(x: np.ndarray, w: np.ndarray, k: int, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Exact weighted k-means in 1-D on a histogram of ``bins`` bins, refined by Lloyd steps on the data.
    Returns (centres ascending, k-1 thresholds)."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.full(k, lo), np.full(k - 1, lo)
    idx = np.clip(((x - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)
    cw = np.r_[0.0, np.cumsum(np.bincount(idx, w, bins))]
    c1 = np.r_[0.0, np.cumsum(np.bincount(idx, w * x, bins))]
    c2 = np.r_[0.0, np.cumsum(np.bincount(idx, w * x * x, bins))]

    def cost(i, j):
        ww, s1, s2 = cw[j] - cw[i], c1[j] - c1[i], c2[j] - c2[i]
        return s2 - np.where(ww > 0, s1 * s1 / np.maximum(ww, 1e-300), 0.0)

    D = cost(np.zeros(bins + 1, dtype=np.int64), np.arange(bins + 1))
    back = []
    for m in range(2, k + 1):
        newD, arg = np.full(bins + 1, np.inf), np.zeros(bins + 1, dtype=np.int64)
        for j in range(m, bins + 1):
            i = np.arange(m - 1, j)
            c = D[i] + cost(i, j)
            a = int(np.argmin(c))
            newD[j], arg[j] = c[a], i[a]
        back.append(arg)
        D = newD
    splits, j = [], bins
    for arg in reversed(back):
        j = int(arg[j])
        splits.append(j)
    thr = lo + (hi - lo) * np.array(sorted(splits), dtype=float) / bins
    centres = np.zeros(k)
    for _ in range(50):
        lab = np.searchsorted(thr, x)
        for c in range(k):
            m = lab == c
            centres[c] = np.average(x[m], weights=w[m]) if m.any() and w[m].sum() > 0 else np.nan
        if np.isnan(centres).any():
            break
        new = 0.5 * (centres[1:] + centres[:-1])
        if np.allclose(new, thr, rtol=0, atol=1e-9 * (hi - lo)):
            break
        thr = new
    lab = np.searchsorted(thr, x)
    centres = np.array([np.median(x[lab == c]) if (lab == c).any() else np.nan for c in range(k)])
    return centres, thr


def _separate(x: np.ndarray, thr: np.ndarray, centres: np.ndarray) -> bool:
    """Whether adjacent clusters are distinct levels rather than a split of one noisy level."""
    lab = np.searchsorted(thr, x)
    spread = [_mad_sigma(x[lab == c]) if (lab == c).sum() >= 3 else math.inf for c in range(centres.size)]
    for c in range(centres.size - 1):
        s = max(spread[c], spread[c + 1], 1e-9 * max(1.0, abs(centres[c + 1])))
        if not (centres[c + 1] - centres[c] >= LEVEL_SEPARATION * s):
            return False
    return True


def _runs(mask: np.ndarray, t: np.ndarray, dt: float) -> list[tuple[int, int]]:
    """Index ranges [i0, i1) of consecutive True samples, broken at gaps."""
    out, i, n = [], 0, mask.size
    gap = np.r_[np.diff(t) > GAP_FACTOR * dt, False]
    while i < n:
        if not mask[i]:
            i += 1
            continue
        j = i + 1
        while j < n and mask[j] and not gap[j - 1]:
            j += 1
        out.append((i, j))
        i = j
    return out


def _edge_time(t: np.ndarray, i: int) -> float:
    """The time between sample i-1 and sample i (the start of sample i's state)."""
    return float(t[0]) if i <= 0 else float(0.5 * (t[i - 1] + t[i])) if i < t.size else float(t[-1])


def _trapezoid_J(t: np.ndarray, P: np.ndarray, a: float, b: float) -> float:
    """Integral of the piecewise-linear interpolation of the samples over [a, b] (within the samples)."""
    a, b = max(a, float(t[0])), min(b, float(t[-1]))
    if b <= a:
        return 0.0
    m = (t > a) & (t < b)
    tt = np.r_[a, t[m], b]
    pp = np.r_[np.interp(a, t, P), P[m], np.interp(b, t, P)]
    return float(np.sum(0.5 * (pp[1:] + pp[:-1]) * np.diff(tt)))


# --- span and idle ------------------------------------------------------------------------------------------

def find_job_span(t: np.ndarray, P: np.ndarray) -> tuple[float, float, float]:
    """(t_job_start_s, t_job_stop_s, P_idle_W) of the single job in a trace with idle before and/or after it."""
    if t.size < MIN_SAMPLES:
        raise CalibrationError(f"the trace has {t.size} samples; at least {MIN_SAMPLES} are needed")
    p_lo, p_hi = np.percentile(P, [1, 99])
    if p_hi - p_lo < max(5.0, 0.05 * p_hi):
        raise CalibrationError(f"the trace shows no job: power stays between {p_lo:.1f} and {p_hi:.1f} W")
    active = np.flatnonzero(P > 0.5 * (p_lo + p_hi))
    i0, i1 = int(active[0]), int(active[-1]) + 1
    outside = np.r_[P[:i0], P[i1:]]
    if outside.size >= MIN_IDLE_SAMPLES:
        idle = float(np.median(outside))
        tol = max(5.0 * _mad_sigma(outside), 0.03 * (p_hi - idle))
        while i0 > 0 and P[i0 - 1] > idle + tol:
            i0 -= 1
        while i1 < P.size and P[i1] > idle + tol:
            i1 += 1
        outside = np.r_[P[:i0], P[i1:]]
    w, _ = _weights(t)
    idle_s = float(w[:i0].sum() + w[i1:].sum())
    if outside.size < MIN_IDLE_SAMPLES or idle_s < MIN_IDLE_S:
        raise CalibrationError(f"the trace has {idle_s:.1f} s ({outside.size} samples) of idle before or after the "
                               f"job; at least {MIN_IDLE_S:g} s and {MIN_IDLE_SAMPLES} samples are needed to fit "
                               "the idle power (record some idle time)")
    return _edge_time(t, i0), _edge_time(t, i1), float(np.median(outside))


# --- levels, dips, period, noise ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Levels:
    high_W: float
    low_W: float
    duty: float
    square_wave: bool
    threshold_W: float
    dip_mask: np.ndarray
    dips: tuple[tuple[float, float], ...]      # (begin, end) times
    P_ckpt_W: float


def _dips(t: np.ndarray, P: np.ndarray, w: np.ndarray, runs: list[tuple[int, int]]):
    """(mask, (begin, end) times, time-weighted mean power) of the sample runs taken as checkpoint dips."""
    mask = np.zeros(P.size, dtype=bool)
    for i0, i1 in runs:
        mask[i0:i1] = True
    P_ckpt = float(np.average(P[mask], weights=w[mask])) if runs else 0.0
    return mask, [(_edge_time(t, i0), _edge_time(t, i1)) for i0, i1 in runs], P_ckpt


def _levels(t: np.ndarray, P: np.ndarray, w: np.ndarray, dt: float) -> _Levels:
    dip_mask, dips, P_ckpt = _dips(t, P, w, [])
    if P.size >= 30:
        c3, thr3 = _kmeans_1d(P, w, 3)
        if not np.isnan(c3).any() and _separate(P, thr3, c3):
            runs = [(i0, i1) for i0, i1 in _runs(P < thr3[0], t, dt) if i1 - i0 >= DIP_MIN_SAMPLES]
            dip_mask, dips, P_ckpt = _dips(t, P, w, runs)
    keep = ~dip_mask
    x, ww = P[keep], w[keep]
    if x.size < 10:
        raise CalibrationError(f"only {x.size} samples of the job are outside checkpoint dips")
    c2, thr2 = _kmeans_1d(x, ww, 2)
    if not dips and not np.isnan(c2).any() and _separate(x, thr2, c2):
        # A checkpoint that drops to the low phase's level (both wait with the GPU idle) is no level of its own:
        # it is a low stretch far longer than the cycle's low phases.
        runs = _runs(P < thr2[0], t, dt)
        if len(runs) >= MIN_PERIODS:
            length = np.array([_edge_time(t, i1) - _edge_time(t, i0) for i0, i1 in runs])
            typical = float(np.median(length))
            # a long low stretch at the job's edge is a warm-up (data loading, compilation) or a wind-down
            long_runs = [(i0, i1) for (i0, i1), d in zip(runs, length)
                         if d > DIP_LENGTH_FACTOR * typical and i1 - i0 >= DIP_MIN_SAMPLES and i0 > 0 and i1 < P.size]
            if long_runs:
                dip_mask, dips, P_ckpt = _dips(t, P, w, long_runs)
                keep = ~dip_mask
                x, ww = P[keep], w[keep]
                c2, thr2 = _kmeans_1d(x, ww, 2)
    mean = float(np.average(x, weights=ww))
    if np.isnan(c2).any() or not _separate(x, thr2, c2):
        return _Levels(mean, mean, 1.0, False, mean, dip_mask, tuple(dips), P_ckpt)
    lo, hi = float(c2[0]), float(c2[1])
    duty = float(np.clip((mean - lo) / (hi - lo), 0.01, 1.0))
    return _Levels(hi, lo, duty, True, float(thr2[0]), dip_mask, tuple(dips), P_ckpt)


def _checkpoints(dips, t_start: float) -> tuple[float, float]:
    """(ckpt_interval_s, ckpt_duration_s) from dip (begin, end) times; (inf, 0) when there are none."""
    if not dips:
        return math.inf, 0.0
    dur = float(np.median([e - b for b, e in dips]))
    if len(dips) >= 2:
        gaps = [dips[i + 1][0] - dips[i][1] for i in range(len(dips) - 1)]
        interval = float(np.median(gaps))
    else:
        interval = float(dips[0][0] - t_start)
    if not interval > 0:
        raise CalibrationError(f"checkpoint dips found but no training time between them: {dips}")
    return interval, dur


def dominant_period_s(t: np.ndarray, P: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The fundamental period of a sampled, possibly non-uniform signal (see step 4 of the module doc)."""
    valid = np.ones(t.size, dtype=bool) if valid is None else valid
    tv = t[valid]
    if tv.size < MIN_SAMPLES:
        raise CalibrationError(f"{tv.size} samples are too few to find a period")
    _, dt = _weights(tv)
    span = float(tv[-1] - tv[0])
    n = int(span / dt) + 1
    grid = tv[0] + dt * np.arange(n)
    j = np.clip(np.searchsorted(t, grid), 1, t.size - 1)
    j = np.where(np.abs(t[j - 1] - grid) <= np.abs(t[j] - grid), j - 1, j)
    ok = valid[j] & (np.abs(t[j] - grid) <= 0.5 * GAP_FACTOR * dt)
    mean = float(np.mean(P[valid]))
    y = np.where(ok, P[j], mean) - mean
    y = y * np.hanning(n)
    nfft = 1 << int(math.ceil(math.log2(4 * n)))
    S = np.abs(np.fft.rfft(y, nfft)) ** 2
    f = np.fft.rfftfreq(nfft, dt)
    f_lo, f_hi = MIN_PERIODS / span, 0.5 / dt
    band = np.flatnonzero((f >= f_lo) & (f <= f_hi))
    if band.size < 8:
        raise CalibrationError(f"the trace ({span:.1f} s at {dt:.3g} s steps) is too short to find a period")
    ip = int(band[np.argmax(S[band])])
    peak = S[ip]
    df = f[1] - f[0]
    best = ip
    for k in range(2, 9):
        fc = f[ip] / k
        if fc < f_lo:
            break
        half = max(4.0 * df, 0.02 * fc)
        win = np.flatnonzero((f >= fc - half) & (f <= fc + half))
        if win.size and S[win].max() >= SUBHARMONIC_POWER * peak:
            best = int(win[np.argmax(S[win])])
    i = best
    if 0 < i < S.size - 1 and S[i - 1] > 0 and S[i + 1] > 0 and S[i] > 0:
        a, b, c = np.log(S[i - 1]), np.log(S[i]), np.log(S[i + 1])
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den < 0 else 0.0
        fi = f[i] + float(np.clip(shift, -0.5, 0.5)) * df
    else:
        fi = f[i]
    return float(1.0 / fi)


MAX_LAGS = 400   # the longest lag, in samples, at which the noise's correlation is estimated


def _fit_ar1(t: np.ndarray, r: np.ndarray, ok: np.ndarray, dt: float) -> Ar1Noise:
    """AR(1) from residuals (see step 5 of the module doc)."""
    sig = _mad_sigma(r[ok])
    if sig == 0.0:
        return Ar1Noise(0.0, dt, dt)
    lags, rho = [], []
    for k in range(1, MAX_LAGS):
        i = np.arange(r.size - k)
        m = ok[i] & ok[i + k] & (np.abs(t[i + k] - t[i] - k * dt) <= 0.5 * dt)
        if m.sum() < 30:
            break
        a, b = r[i[m]], r[i[m] + k]
        if a.std() == 0 or b.std() == 0:
            break
        c = float(np.corrcoef(a, b)[0, 1])
        if not c > max(0.05, rho[0] * math.exp(-1.0) if rho else 0.0):
            break       # fit the decay over one correlation time, where the estimates are precise
        lags.append(k * dt)
        rho.append(c)
    if len(rho) >= 2:
        slope, icept = np.polyfit(lags, np.log(rho), 1)
        tau = -1.0 / slope if slope < 0 else 1e3 * dt
        A = float(min(math.exp(icept), 1.0))
    elif len(rho) == 1:
        tau, A = -dt / math.log(rho[0]), 1.0
    else:   # uncorrelated from one sample to the next: correlation time below the sampling step
        tau, A = dt / 3.0, 1.0
    # a correlation longer than the lags looked at is drift (a GPU warming up), not noise: cap it there (this also
    # bounds the memory of the noise's blocks, which grow with tau / dt)
    tau = min(tau, MAX_LAGS * dt)
    return Ar1Noise(float(sig * math.sqrt(A)), float(tau), float(dt))


# --- training --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingFit:
    """A fitted training model and what the fit found on the trace."""

    model: TrainingPower
    t_job_start_s: float
    t_job_stop_s: float
    n_dips: int
    square_wave: bool
    P_limit_W: float | None
    high_at_limit: bool

    def info(self) -> dict:
        return {"t_job_start_s": self.t_job_start_s, "t_job_stop_s": self.t_job_stop_s, "n_ckpt_dips": self.n_dips,
                "square_wave": self.square_wave, "P_limit_W": self.P_limit_W, "high_at_power_limit": self.high_at_limit}


def _job_samples(t_s, P_W, span, P_idle_W):
    """(t0, t1, idle level, times, powers) of the job in a trace: the span and idle level given, or found."""
    t, P = np.asarray(t_s, dtype=float), np.asarray(P_W, dtype=float)
    if span is None or P_idle_W is None:
        t0, t1, idle = find_job_span(t, P)
    else:
        (t0, t1), idle = span, float(P_idle_W)
    m = (t >= t0) & (t < t1)
    tj, Pj = t[m], P[m]
    if tj.size < MIN_SAMPLES:
        raise CalibrationError(f"the job has {tj.size} samples; at least {MIN_SAMPLES} are needed")
    return t0, t1, idle, tj, Pj


def fit_training(t_s, P_W, *, P_limit_W: float | None = None, span: tuple[float, float] | None = None,
                 P_idle_W: float | None = None) -> TrainingFit:
    """Fit a ``TrainingPower`` to one GPU's samples (sorted, unique times). ``span`` and ``P_idle_W``, when
    given, are used instead of being found (``fit_power`` passes them to fit half a trace)."""
    t0, t1, idle, tj, Pj = _job_samples(t_s, P_W, span, P_idle_W)
    w, dt = _weights(tj)
    lev = _levels(tj, Pj, w, dt)
    interval, duration = _checkpoints(lev.dips, t0)
    if lev.square_wave:
        period = dominant_period_s(tj, Pj, ~lev.dip_mask)
        level_of = np.where(Pj > lev.threshold_W, lev.high_W, lev.low_W)
    else:
        period = 1.0        # irrelevant: high == low
        level_of = np.full(Pj.size, lev.high_W)
    noise = _fit_ar1(tj, Pj - level_of, ~lev.dip_mask, dt)
    model = TrainingPower(P_idle_W=idle, P_high_W=lev.high_W, P_low_W=lev.low_W, duty=lev.duty, period_s=period,
                          P_ckpt_W=lev.P_ckpt_W, ckpt_interval_s=interval, ckpt_duration_s=duration, noise=noise)
    at_limit = P_limit_W is not None and lev.high_W >= (1.0 - LIMIT_REL) * P_limit_W
    return TrainingFit(model, float(t0), float(t1), len(lev.dips), lev.square_wave, P_limit_W, bool(at_limit))


# --- inference -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InferenceFit:
    model: InferencePower
    t_job_start_s: float
    t_job_stop_s: float
    n_bursts: int

    def info(self) -> dict:
        return {"t_job_start_s": self.t_job_start_s, "t_job_stop_s": self.t_job_stop_s,
                "n_prefill_bursts": self.n_bursts}


def _union_s(starts: np.ndarray, length_s: float, t0: float, t1: float) -> float:
    """Total time within [t0, t1] covered by the intervals [s, s + length_s] (starts sorted)."""
    total, end = 0.0, -math.inf
    for a in starts:
        a0, a1 = max(a, end, t0), min(a + length_s, t1)
        if a1 > a0:
            total += a1 - a0
        end = max(end, a + length_s)
    return total


def _length_filling(starts: np.ndarray, covered_s: float, t0: float, t1: float) -> float | None:
    """The interval length at which requests starting at ``starts`` cover ``covered_s`` of [t0, t1]; None when
    no length can (busy time before the first start: a trace that begins while requests are decoding)."""
    lo, hi = 0.0, t1 - t0
    if _union_s(starts, hi, t0, t1) < covered_s:
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _union_s(starts, mid, t0, t1) < covered_s else (lo, mid)
    return 0.5 * (lo + hi)


def fit_inference(t_s, P_W, *, span: tuple[float, float] | None = None,
                  P_idle_W: float | None = None) -> InferenceFit:
    """Fit an ``InferencePower`` to one GPU's samples (sorted, unique times)."""
    t0, t1, idle, tj, Pj = _job_samples(t_s, P_W, span, P_idle_W)
    w, dt = _weights(tj)
    c, thr = _kmeans_1d(Pj, w, 3)
    if np.isnan(c).any() or not _separate(Pj, thr, c):
        raise CalibrationError(f"the job does not show three power levels (wait, decode, prefill): "
                               f"clusters at {np.round(c, 1).tolist()} W are not separate")
    state = np.searchsorted(thr, Pj)
    T = float(w.sum())
    b_p = float(w[state == 2].sum() / T)
    b = float(w[state >= 1].sum() / T)
    bursts = _runs(state == 2, tj, dt)
    if not bursts or b_p >= 1.0 or b >= 1.0:
        raise CalibrationError("the job shows no separate prefill bursts between waits")
    rate = len(bursts) / T / (1.0 - b_p)   # a request arriving during a prefill merges into its burst
    prefill = -math.log(1.0 - b_p) / rate
    # Inverting the busy fraction as well would take the decode time from one realisation of the arrivals and
    # scatter by tens of % on a trace of minutes. The requests themselves are seen (each prefill burst starts
    # one): the request time at which they cover exactly the measured busy time is the estimate.
    starts = np.array([_edge_time(tj, j0) for j0, _ in bursts])
    request_s = _length_filling(starts, b * T, t0, t1)
    if request_s is None:                 # fall back on the formula
        request_s = -math.log(1.0 - b) / rate
    decode = max(request_s - prefill, 0.0)
    noise = _fit_ar1(tj, Pj - c[state], np.ones(Pj.size, dtype=bool), dt)
    model = InferencePower(P_idle_W=idle, P_wait_W=float(c[0]), P_prefill_W=float(c[2]), P_decode_W=float(c[1]),
                           prefill_s=float(prefill), decode_s=float(decode), rate_per_s=float(rate), noise=noise)
    return InferenceFit(model, float(t0), float(t1), len(bursts))


# --- checks ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plateau:
    name: str
    measured_W: float
    model_W: float

    @property
    def rel_err(self) -> float:
        # relative to the measured level, at least 1 W: a GPU that reads 0 W at idle has a 0 W plateau too
        return abs(self.model_W - self.measured_W) / max(abs(self.measured_W), 1.0)


@dataclass(frozen=True)
class FitCheck:
    """A model against a window [t0_s, t1_s) of a trace (see the module doc)."""

    t0_s: float
    t1_s: float
    E_measured_J: float
    E_model_J: float
    plateaus: tuple[Plateau, ...]
    period_measured_s: float | None
    period_model_s: float | None
    energy_rel_sd: float | None = None      # inference: spread of a window's mean power from request randomness
    E_given_requests_J: float | None = None  # inference: the model driven by the requests seen in the window
    n_requests: int | None = None

    @property
    def expected_energy_rel_err(self) -> float:
        """The model's expected energy (for inference: at its mean request rate) against the measured one."""
        return abs(self.E_model_J - self.E_measured_J) / self.E_measured_J

    @property
    def energy_rel_err(self) -> float:
        """The energy criterion's error. For inference, the model is driven by the window's own requests: the
        rate is the demand, not the GPU, and a window of a minute holds so few requests that its energy varies
        by ``energy_rel_sd`` (tens of %) around the expectation whatever the model."""
        E = self.E_model_J if self.E_given_requests_J is None else self.E_given_requests_J
        return abs(E - self.E_measured_J) / self.E_measured_J

    @property
    def period_rel_err(self) -> float | None:
        if self.period_measured_s is None or self.period_model_s is None:
            return None
        return abs(self.period_model_s - self.period_measured_s) / self.period_measured_s

    @property
    def passed(self) -> bool:
        per = self.period_rel_err
        return (self.energy_rel_err <= ENERGY_REL_TOL and all(p.rel_err <= PLATEAU_REL_TOL for p in self.plateaus)
                and (per is None or per <= PERIOD_REL_TOL))

    def to_dict(self) -> dict:
        return {"t0_s": self.t0_s, "t1_s": self.t1_s, "E_measured_J": self.E_measured_J, "E_model_J": self.E_model_J,
                "energy_rel_err": self.energy_rel_err,
                "plateaus": {p.name: {"measured_W": p.measured_W, "model_W": p.model_W, "rel_err": p.rel_err}
                             for p in self.plateaus},
                "period_measured_s": self.period_measured_s, "period_model_s": self.period_model_s,
                "period_rel_err": self.period_rel_err, "energy_rel_sd": self.energy_rel_sd,
                "E_given_requests_J": self.E_given_requests_J, "n_requests": self.n_requests,
                "expected_energy_rel_err": self.expected_energy_rel_err, "passed": self.passed}


def _window(t, P, t_job, t0, t1):
    a, b = max(t0, t_job[0]), min(t1, t_job[1])
    m = (t >= a) & (t < b)
    if m.sum() < MIN_SAMPLES:
        raise CalibrationError(f"the window [{a:.1f}, {b:.1f}) s holds {m.sum()} job samples; "
                               f"{MIN_SAMPLES} are needed for a check")
    idle = np.r_[P[t < t_job[0]], P[t >= t_job[1]]]
    idle = idle if idle.size >= MIN_IDLE_SAMPLES else None
    return a, b, t[m], P[m], idle


def check_training(model: TrainingPower, t_s, P_W, t_job: tuple[float, float],
                   t0_s: float = -math.inf, t1_s: float = math.inf, with_idle: bool = True) -> FitCheck:
    """The model, run over the job ``t_job`` = (start, stop), against the trace's samples in [t0_s, t1_s);
    ``with_idle``: also the idle level against the samples outside the job."""
    t, P = np.asarray(t_s, dtype=float), np.asarray(P_W, dtype=float)
    a, b, tw, Pw, idle = _window(t, P, t_job, t0_s, t1_s)
    run = replace(model, noise=replace(model.noise, sigma_W=0.0)).run(t_job[0], t_job[1])
    E_model = run.energy_J(a, b)
    E_meas = _trapezoid_J(t, P, a, b)
    w, dt = _weights(tw)
    lev = _levels(tw, Pw, w, dt)
    plateaus = [Plateau("high", lev.high_W, model.P_high_W), Plateau("low", lev.low_W, model.P_low_W)]
    if lev.dips and model.has_checkpoints:
        plateaus.append(Plateau("ckpt", lev.P_ckpt_W, model.P_ckpt_W))
    if idle is not None and with_idle:
        plateaus.append(Plateau("idle", float(np.median(idle)), model.P_idle_W))
    period_meas = dominant_period_s(tw, Pw, ~lev.dip_mask) if lev.square_wave else None
    period_model = model.period_s if model.P_high_W != model.P_low_W else None
    return FitCheck(a, b, E_meas, E_model, tuple(plateaus), period_meas, period_model)


def window_energy_rel_sd(model: InferencePower, window_s: float, n_windows: int = 40) -> float:
    """The relative standard deviation of the mean power over a window of ``window_s`` when requests arrive at
    random (Poisson): simulated with the model over ``n_windows`` windows (fixed seed, noise left out)."""
    quiet = replace(model, noise=Ar1Noise())
    warm = 10.0 * (model.prefill_s + model.decode_s)
    run = quiet.run(-warm, n_windows * window_s, seed=0)
    means = np.array([run.energy_J(k * window_s, (k + 1) * window_s) for k in range(n_windows)]) / window_s
    return float(np.std(means, ddof=1) / np.mean(means))


def check_inference(model: InferencePower, t_s, P_W, t_job: tuple[float, float],
                    t0_s: float = -math.inf, t1_s: float = math.inf, with_idle: bool = True) -> FitCheck:
    """Energy (the model's expected mean power) and levels against the samples in [t0_s, t1_s). The measured
    energy of a window varies with the requests that happened to arrive: ``energy_rel_sd`` says by how much,
    so that a failed energy check on a short trace can be read (the criterion itself is not relaxed)."""
    t, P = np.asarray(t_s, dtype=float), np.asarray(P_W, dtype=float)
    a, b, tw, Pw, idle = _window(t, P, t_job, t0_s, t1_s)
    E_model = model.mean_power_W() * (b - a)
    E_meas = _trapezoid_J(t, P, a, b)
    w, _ = _weights(tw)
    c, _ = _kmeans_1d(Pw, w, 3)
    plateaus = [Plateau("wait", float(c[0]), model.P_wait_W), Plateau("decode", float(c[1]), model.P_decode_W),
                Plateau("prefill", float(c[2]), model.P_prefill_W)]
    if idle is not None and with_idle:
        plateaus.append(Plateau("idle", float(np.median(idle)), model.P_idle_W))
    # The window's requests, as far as the samples show them: the starts of prefill bursts (at the midpoints of
    # the model's levels). They are resolved while bursts rarely merge (a request merges with probability b_p);
    # a server busier than that sees so many requests in a window that its energy scatters little.
    thr = [0.5 * (model.P_wait_W + model.P_decode_W), 0.5 * (model.P_decode_W + model.P_prefill_W)]
    prefilling = np.searchsorted(thr, Pw) == 2
    E_given, n_requests = None, None
    if np.average(prefilling, weights=w) <= RESOLVED_PREFILL_FRACTION:
        # the requests from the job's start on, so that those still decoding when the window opens count too
        m = (t >= t_job[0]) & (t < b)
        tj = t[m]
        starts = [_edge_time(tj, i0) for i0, _ in _runs(np.searchsorted(thr, P[m]) == 2, tj, _weights(tj)[1])]
        quiet = replace(model, noise=replace(model.noise, sigma_W=0.0))
        E_given = quiet.run(t_job[0], b, arrivals_s=starts).energy_J(a, b)
        n_requests = sum(a <= x < b for x in starts)
    return FitCheck(a, b, E_meas, E_model, tuple(plateaus), None, None, window_energy_rel_sd(model, b - a),
                    E_given, n_requests)


# --- fit_power: a trace file in, a model file and a plot out --------------------------------------------------

@dataclass(frozen=True)
class GpuFitReport:
    gpu: int
    fit: TrainingFit | InferenceFit
    in_sample: FitCheck
    holdout: FitCheck | None
    holdout_note: str

    def to_dict(self) -> dict:
        return {"gpu": self.gpu, "fit": self.fit.info(), "model": model_to_dict(self.fit.model),
                "in_sample": self.in_sample.to_dict(),
                "holdout": self.holdout.to_dict() if self.holdout else None, "holdout_note": self.holdout_note}


@dataclass(frozen=True)
class PowerFitResult:
    workload_class: str
    model: TrainingPower | InferencePower
    gpus: tuple[GpuFitReport, ...]

    @property
    def passed(self) -> bool:
        """Every GPU's holdout check passed (GPUs without a holdout count by their in-sample check)."""
        return all((g.holdout or g.in_sample).passed for g in self.gpus)


def model_kind(workload_class: str) -> str:
    """The model a workload class is fitted with: "inference" (request-driven) or "training" (periodic)."""
    return "inference" if WorkloadClass(workload_class) in REQUEST_DRIVEN else "training"


def _fit(workload_class: str, t, P, P_limit_W, span=None, P_idle_W=None) -> TrainingFit | InferenceFit:
    if model_kind(workload_class) == "training":
        return fit_training(t, P, P_limit_W=P_limit_W, span=span, P_idle_W=P_idle_W)
    return fit_inference(t, P, span=span, P_idle_W=P_idle_W)


_CHECKS = {"training": check_training, "inference": check_inference}


def _fit_one(workload_class: str, s: GpuSeries) -> GpuFitReport:
    t, P, check = s.t_s, s.P_W, _CHECKS[model_kind(workload_class)]
    fit = _fit(workload_class, t, P, s.P_limit_W)
    job = (fit.t_job_start_s, fit.t_job_stop_s)
    in_sample = check(fit.model, t, P, job)
    mid = 0.5 * (job[0] + job[1])
    first = t < mid
    try:
        half = _fit(workload_class, t[first], P[first], s.P_limit_W, (job[0], mid), fit.model.P_idle_W)
        holdout = check(half.model, t, P, job, mid, job[1], with_idle=False)
        note = "fitted on the first half of the job (idle and span from the whole trace), checked on the second"
    except CalibrationError as e:
        holdout, note = None, f"no holdout check: {e}"
    return GpuFitReport(s.gpu, fit, in_sample, holdout, note)


def _structure(m) -> tuple:
    """What a model has: a square wave (two levels), checkpoint dips. Medians only mix models alike in this."""
    if isinstance(m, TrainingPower):
        return (m.P_high_W > m.P_low_W, math.isfinite(m.ckpt_interval_s))
    return ()


def _combine(models: list) -> TrainingPower | InferencePower:
    """The element-wise median of the GPUs' models, over the GPUs whose models have the structure most of them
    have (ties: the first GPU's): a constant-power GPU's placeholder period must not blend into a square wave's."""
    if len(models) == 1:
        return models[0]
    kinds = [_structure(m) for m in models]
    best = max(kinds, key=lambda k: (kinds.count(k), -kinds.index(k)))
    models = [m for m, k in zip(models, kinds) if k == best]
    if len(models) == 1:
        return models[0]
    cls = type(models[0])
    med = lambda name: float(np.median([getattr(m, name) for m in models]))  # noqa: E731
    noise = Ar1Noise(*(float(np.median([getattr(m.noise, k) for m in models])) for k in ("sigma_W", "tau_s", "dt_s")))
    if cls is TrainingPower:
        interval = med("ckpt_interval_s")
        return TrainingPower(med("P_idle_W"), med("P_high_W"), med("P_low_W"), med("duty"), med("period_s"),
                             med("P_ckpt_W"), interval, med("ckpt_duration_s") if math.isfinite(interval) else 0.0,
                             noise)
    return InferencePower(med("P_idle_W"), med("P_wait_W"), med("P_prefill_W"), med("P_decode_W"), med("prefill_s"),
                          med("decode_s"), med("rate_per_s"), noise)


def fit_power(trace_path: str | os.PathLike, workload_class: str, out_path: str | os.PathLike,
              plot_path: str | os.PathLike, *, gpus: Sequence[int] | None = None,
              scrape_interval_s: float | None = None) -> PowerFitResult:
    """Fit the power model of ``workload_class`` (a ``WorkloadClass`` value, e.g. "pretraining" or
    "online_inference") to a trace; write the model file (JSON, units in keys) and a PNG of measured against
    modelled power. Each GPU is fitted alone; the written model is the element-wise
    median of the GPUs' models. Raises TraceError for a malformed trace, CalibrationError when it cannot be
    fitted."""
    if workload_class not in WORKLOAD_CLASSES:
        raise ValueError(f"unknown workload class {workload_class!r}: expected one of {list(WORKLOAD_CLASSES)}")
    trace = load_gpu_trace(trace_path, scrape_interval_s=scrape_interval_s)
    series = [trace.gpu(g) for g in gpus] if gpus else list(trace.series)
    reports = []
    for s in series:
        try:
            reports.append(_fit_one(workload_class, s))
        except CalibrationError as e:
            raise CalibrationError(f"{trace.source}: GPU {s.gpu}: {e}") from e
    model = _combine([r.fit.model for r in reports])
    result = PowerFitResult(workload_class, model, tuple(reports))
    doc = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "workload_class": workload_class,
           "model": model_to_dict(model),
           "fit": {"trace": str(trace_path), "gpus": [r.gpu for r in reports],
                   "criteria": {"energy_rel": ENERGY_REL_TOL, "plateau_rel": PLATEAU_REL_TOL,
                                "period_rel": PERIOD_REL_TOL},
                   "passed": result.passed, "per_gpu": [r.to_dict() for r in reports]}}
    text = json.dumps(doc, indent=2, allow_nan=False)   # before the file is touched: nothing half-written
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    plot_fit(plot_path, series, result)
    return result


def plot_fit(plot_path: str | os.PathLike, series: Sequence[GpuSeries], result: PowerFitResult) -> None:
    """Measured against modelled power, one row per GPU (at most four): window means over the whole trace,
    the first seconds of the job, and the distribution of the job's samples."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(zip(series, result.gpus))[:4]
    fig = Figure(figsize=(15, 3.6 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    model = result.model
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for (s, rep), (ax0, ax1, ax2) in zip(rows, axes):
        t, P = s.t_s, s.P_W
        job = (rep.fit.t_job_start_s, rep.fit.t_job_stop_s)
        tr = t - t[0]
        if model.kind == "training":
            run = model.run(*job, seed=s.gpu)
            mean_run = replace(model, noise=replace(model.noise, sigma_W=0.0)).run(*job)
            W = max(10.0, 5.0 * model.period_s)
        else:
            run = model.run(*job, seed=s.gpu)
            mean_run = None
            W = 30.0
        edges = np.arange(t[0], t[-1] + W, W)
        mids = 0.5 * (edges[1:] + edges[:-1]) - t[0]
        meas = np.array([_trapezoid_J(t, P, a, b) / max(min(b, t[-1]) - max(a, t[0]), 1e-9)
                         for a, b in zip(edges[:-1], edges[1:])])
        if mean_run is not None:
            mod = np.array([mean_run.energy_J(a, b) / (b - a) for a, b in zip(edges[:-1], edges[1:])])
        else:   # the expectation over random arrivals, not one random draw of them
            inside = np.clip(np.minimum(edges[1:], job[1]) - np.maximum(edges[:-1], job[0]), 0.0, None)
            mod = (model.mean_power_W() * inside + model.P_idle_W * (W - inside)) / W
        ax0.plot(tr, P, color="0.8", lw=0.5, label="measured samples")
        ax0.step(mids, meas, where="mid", color="C0", label=f"measured, {W:.0f} s means")
        ax0.step(mids, mod, where="mid", color="C3", ls="--",
                 label=f"model, {W:.0f} s means" + (" (expected)" if mean_run is None else ""))
        ax0.set(xlabel="time in trace [s]", ylabel="GPU power [W]",
                title=f"GPU {s.gpu}: energy error {rep.in_sample.energy_rel_err:.1%} (in sample)"
                      + (f", {rep.holdout.energy_rel_err:.1%} (holdout)" if rep.holdout else ""))
        ax0.legend(fontsize=7, loc="lower center")
        span = min(60.0, 8.0 * model.period_s) if model.kind == "training" else 30.0
        z0 = job[0] - 0.1 * span
        zm = (t >= z0) & (t < z0 + span)
        tf = np.linspace(z0, z0 + span, 4000)
        ax1.plot(t[zm] - t[0], P[zm], ".-", color="C0", ms=3, lw=0.6, label="measured")
        if mean_run is not None:
            ax1.plot(tf - t[0], mean_run.power_W(tf), color="C3", lw=1.0, label="model (without noise)")
        else:
            for name in ("P_wait_W", "P_decode_W", "P_prefill_W"):
                ax1.axhline(getattr(model, name), color="C3", ls="--", lw=0.8)
            ax1.plot([], [], color="C3", ls="--", label="model levels")
        ax1.set(xlabel="time in trace [s]", ylabel="GPU power [W]", title="start of the job")
        ax1.legend(fontsize=7)
        jm = (t >= job[0]) & (t < job[1])
        bins = np.linspace(min(P[jm].min(), model.P_idle_W) - 5, P[jm].max() + 5, 80)
        ax2.hist(P[jm], bins=bins, density=True, alpha=0.5, color="C0", label="measured")
        ax2.hist(run.power_W(t[jm]), bins=bins, density=True, histtype="step", color="C3", lw=1.2,
                 label="model (with noise)")
        ax2.set(xlabel="GPU power [W]", ylabel="density", title="power distribution during the job")
        ax2.legend(fontsize=7)
    Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(plot_path), dpi=90)


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, no sys.exit
        raise _ArgError(message)


def main_fit_power(argv: Sequence[str] | None = None) -> int:
    """``twin fit-power TRACE --class CLASS [--out PATH] [--plot PATH] [--gpu N]... [--scrape-interval S]``.

    Exit codes: 0 the model is written and every check passed; 1 the model is written but a check failed,
    or the trace could not be fitted; 2 bad input (arguments, a missing or malformed trace), with a one-line
    error on stderr."""
    p = _Parser(prog="twin fit-power", description="Fit a GPU power model to a power trace.")
    p.add_argument("trace", help="NVML Parquet (long format), nvidia-smi CSV or DCGM exporter text")
    p.add_argument("--class", dest="workload_class", required=True, choices=WORKLOAD_CLASSES,
                   help="the workload class the trace shows (online_inference: request-driven model; "
                        "the others: periodic training model)")
    p.add_argument("--out", help="model file to write (default: TRACE with suffix .power.json)")
    p.add_argument("--plot", help="PNG to write (default: TRACE with suffix .power.png)")
    p.add_argument("--gpu", type=int, action="append", help="fit only this GPU index (repeatable)")
    p.add_argument("--scrape-interval", dest="scrape_interval_s", type=float,
                   help="seconds between DCGM scrapes, for samples without timestamps")
    try:
        args = p.parse_args(argv)
    except _ArgError as e:
        print(f"twin fit-power: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:   # --help
        return int(e.code or 0)
    trace = Path(args.trace)
    stem = trace.with_suffix("")
    out = Path(args.out) if args.out else stem.with_name(stem.name + ".power.json")
    plot = Path(args.plot) if args.plot else stem.with_name(stem.name + ".power.png")
    try:
        result = fit_power(trace, args.workload_class, out, plot, gpus=args.gpu,
                           scrape_interval_s=args.scrape_interval_s)
    except TraceError as e:
        print(f"twin fit-power: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except CalibrationError as e:
        print(f"twin fit-power: fit failed: {_one_line(e)}", file=sys.stderr)
        return 1
    except TwinError as e:
        print(f"twin fit-power: error: {_one_line(e)}", file=sys.stderr)
        return 2
    for g in result.gpus:
        c = g.holdout or g.in_sample
        per = f", period {c.period_rel_err:.1%}" if c.period_rel_err is not None else ""
        energy = f"energy {c.energy_rel_err:.1%}"
        if c.E_given_requests_J is not None:
            energy += (f" given the window's {c.n_requests} requests (at the mean rate {c.expected_energy_rel_err:.1%}, "
                       f"which request randomness varies by {c.energy_rel_sd:.1%} over this window)")
        elif c.energy_rel_sd is not None:
            energy += f" (request randomness varies it by {c.energy_rel_sd:.1%} over this window)"
        worst = max((pl.rel_err for pl in c.plateaus), default=0.0)
        print(f"GPU {g.gpu}: {'holdout' if g.holdout else 'in-sample'} {energy}, "
              f"plateaus {worst:.1%}{per}: {'pass' if c.passed else 'FAIL'}")
    print(f"wrote {out} and {plot}")
    return 0 if result.passed else 1


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
