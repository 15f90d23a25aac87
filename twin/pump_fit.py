"""Fits the parameters of the Pump FMU (models/Pump) to a manufacturer's curves at nominal speed.

The FMU's curves at relative speed r (equations in models/Pump/README.md), with x = V / r:

    dp(r, V)   = r^2 H(x),  H(x) = c1 + c2 x + c3 x^2 + c4 x^3            (Pa, at the reference density)
    P_el(r, V) = r^3 P(x),  P(x) = p0 + p1 x + p2 x^2 + p3 x^3            (W, electric input)

A table gives H and P at r = 1. The coefficients are fitted to minimise the largest relative error over the
table points (a Chebyshev fit, solved as a linear program), because the acceptance criterion of a pump curve is
a largest error (head within 2 %, power within 3 %), which an ordinary least-squares fit does not minimise.
The fits are constrained to what the FMU needs to be physical and to have a unique operating point:

- H is concave on [0, X] and H(X) <= 0 for some X (tried on a fixed list of multiples of the largest tabulated
  flow, the best kept): the curve reaches zero head (run-out) at x_run <= X, and against any system curve
  dp_static + K V^2 the operating point is unique;
- eta_motor * P(x) >= (1 + margin) * x H(x) on [0, x_run]: the hydraulic efficiency stays below 1;
- P(x) >= 0.1 % of the largest tabulated power on [0, x_run].

``degree=2`` fits the quadratic curve (c4 = 0) for which the FMU solves the operating point in closed form.
Errors: CalibrationError naming the table and what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CalibrationError

RHO_REF_KG_M3 = 998.2          # water at 20 C: the density manufacturer curves are usually given for
ETA_MOTOR = 0.9                # default motor (and drive) efficiency used to split the electric power
_RUNOUT_CANDIDATES = (1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)
_ETA_MARGIN = 1e-3             # hydraulic efficiency at most 1 / (1 + margin) on the fitting grid
_P_FLOOR_REL = 1e-3            # P(x) >= this fraction of the largest tabulated power
_GRID = 2001                   # points of the constraint grids on [0, X] and [0, x_run]


@dataclass(frozen=True)
class PumpTable:
    """A pump's curves at nominal speed: head (dp) and electric power against volume flow."""

    name: str
    V_dp_m3_s: np.ndarray
    dp_Pa: np.ndarray
    V_P_m3_s: np.ndarray
    P_el_W: np.ndarray
    motor_cooled_by_fluid: bool


def read_wilo(folder: str | Path) -> dict[str, PumpTable]:
    """The pumps of ../shared/data/pump_curves_wilo (wilo_pump_curves.csv and wilo_pump_meta.csv), by name."""
    import pandas as pd

    folder = Path(folder)
    curves = pd.read_csv(folder / "wilo_pump_curves.csv")
    meta = pd.read_csv(folder / "wilo_pump_meta.csv").set_index("pump")
    tables = {}
    for name, g in curves.groupby("pump", sort=True):
        pr = g[g["curve"] == "pressure"].sort_values("V_flow_m3_s")
        pw = g[g["curve"] == "power"].sort_values("V_flow_m3_s")
        if set(pr["unit"]) != {"Pa"} or set(pw["unit"]) != {"W"}:
            raise CalibrationError(f"{folder / 'wilo_pump_curves.csv'}: pump {name}: expected units Pa and W, "
                                   f"found {sorted(set(pr['unit']))} and {sorted(set(pw['unit']))}")
        cooled = bool(meta.loc[name, "motorCooledByFluid"]) if name in meta.index else False
        tables[name] = PumpTable(name, pr["V_flow_m3_s"].to_numpy(float), pr["value"].to_numpy(float),
                                 pw["V_flow_m3_s"].to_numpy(float), pw["value"].to_numpy(float), cooled)
    return tables


def _check_table(what: str, V: np.ndarray, y: np.ndarray, n_min: int) -> None:
    problems = []
    if V.shape != y.shape or V.ndim != 1:
        problems.append(f"flows and values must be 1-D arrays of one length, found {V.shape} and {y.shape}")
    elif V.size < n_min:
        problems.append(f"needs at least {n_min} points, found {V.size}")
    else:
        if not (np.all(np.isfinite(V)) and np.all(np.isfinite(y))):
            problems.append("has non-finite values")
        if np.any(V < 0):
            problems.append(f"has negative flows (smallest {V.min():g} m3/s)")
        if np.any(y <= 0):
            problems.append(f"has values <= 0 (smallest {y.min():g}); a relative fit needs positive values")
    if problems:
        raise CalibrationError(f"{what}: " + "; ".join(problems))


def _minimax(A: np.ndarray, y: np.ndarray, A_ineq: np.ndarray, b_ineq: np.ndarray) -> tuple[np.ndarray, float] | None:
    """min_c max_i |A c - y|_i / y_i subject to A_ineq c <= b_ineq; None where infeasible."""
    from scipy.optimize import linprog

    n = A.shape[1]
    As = A / y[:, None]
    ones = np.ones((len(y), 1))
    A_ub = np.vstack([np.hstack([As, -ones]), np.hstack([-As, -ones]),
                      np.hstack([A_ineq, np.zeros((len(A_ineq), 1))])])
    b_ub = np.concatenate([np.ones(len(y)), -np.ones(len(y)), b_ineq])
    res = linprog(np.r_[np.zeros(n), 1.0], A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * (n + 1), method="highs")
    if res.status != 0:
        return None
    return res.x[:n], float(res.x[n])


def _powers(x: np.ndarray, n: int) -> np.ndarray:
    return np.column_stack([x ** k for k in range(n)])


def runout(h: np.ndarray) -> float:
    """The smallest positive zero of the head polynomial h (lowest power first, h[0] > 0)."""
    h = np.trim_zeros(np.asarray(h, float), "b")
    # scale x by a bound on the roots' magnitude so that the companion matrix is balanced
    s = max((abs(h[0]) / abs(h[k])) ** (1.0 / k) for k in range(1, len(h)) if h[k] != 0) if len(h) > 1 else 1.0
    hs = h * s ** np.arange(len(h))
    roots = np.roots(hs[::-1]) * s
    real = [r.real for r in roots if abs(r.imag) <= 1e-9 * abs(r) and r.real > 0]
    if not real:
        raise CalibrationError(f"the head curve {h.tolist()} never reaches zero head")
    return min(real)


def fit_head(V_m3_s, dp_Pa, degree: int = 3, *, name: str = "pump") -> tuple[np.ndarray, float]:
    """(c in SI, lowest power first and padded to 4 coefficients; largest relative error at the points)."""
    V, y = np.asarray(V_m3_s, float), np.asarray(dp_Pa, float)
    if degree not in (2, 3):
        raise CalibrationError(f"{name}: head curve degree must be 2 or 3, got {degree}")
    _check_table(f"{name}: pressure table", V, y, degree + 2)
    Vs, ys = V.max(), y.max()
    if Vs <= 0:
        raise CalibrationError(f"{name}: pressure table has no positive flow")
    x, yn = V / Vs, y / ys
    n = degree + 1
    def curvature(z):                 # coefficients of H''(z)
        return np.array([0.0, 0.0, 2.0, 6.0 * z][:n])

    best = None
    for X in _RUNOUT_CANDIDATES:
        # H''(0) <= 0 and H''(X) <= 0 (H'' is linear: concave on [0, X]); H(X) <= 0 (run-out before X)
        A_ineq = np.array([curvature(0.0), curvature(X), X ** np.arange(n)])
        sol = _minimax(_powers(x, n), yn, A_ineq, np.zeros(3))
        if sol is not None and (best is None or sol[1] < best[1]):
            best = sol
    if best is None:
        raise CalibrationError(f"{name}: no concave head curve of degree {degree} reaches zero head within "
                               f"{_RUNOUT_CANDIDATES[-1]:g} times the largest tabulated flow")
    cn = np.zeros(4)
    cn[:n] = best[0]
    c = cn * ys / Vs ** np.arange(4)
    err = float(np.max(np.abs(_powers(V, 4) @ c / y - 1.0)))
    return c, err


def fit_power(V_m3_s, P_el_W, head: np.ndarray, eta_motor: float = ETA_MOTOR, *,
              name: str = "pump") -> tuple[np.ndarray, float]:
    """(p in SI, lowest power first; largest relative error at the points) for the electric power curve."""
    V, y = np.asarray(V_m3_s, float), np.asarray(P_el_W, float)
    _check_table(f"{name}: power table", V, y, 5)
    if not 0 < eta_motor <= 1:
        raise CalibrationError(f"{name}: eta_motor must be in (0, 1], got {eta_motor}")
    Vs, Ps = V.max(), y.max()
    hs = np.asarray(head, float) * Vs ** np.arange(4)         # H in Pa against x = V / Vs
    xr = runout(hs)
    g = np.linspace(0.0, xr, _GRID)
    hyd = g * Vs * (_powers(g, 4) @ hs) / Ps                  # x H(x) in units of Ps
    A = _powers(g, 4)
    lower = np.maximum((1.0 + _ETA_MARGIN) * hyd / eta_motor, _P_FLOOR_REL)
    sol = _minimax(_powers(V / Vs, 4), y / Ps, -A, -lower)
    if sol is None:
        raise CalibrationError(f"{name}: no cubic power curve keeps the hydraulic efficiency below 1 "
                               f"with eta_motor = {eta_motor}")
    p = sol[0] * Ps / Vs ** np.arange(4)
    err = float(np.max(np.abs(_powers(V, 4) @ p / y - 1.0)))
    return p, err


def fit_pump(V_dp_m3_s, dp_Pa, V_P_m3_s, P_el_W, *, degree: int = 3, eta_motor: float = ETA_MOTOR,
             rho_ref_kg_m3: float = RHO_REF_KG_M3, motor_cooled_by_fluid: bool = False,
             name: str = "pump") -> dict[str, float]:
    """The Pump FMU's parameters fitted to a pressure table and an electric power table at nominal speed."""
    c, _ = fit_head(V_dp_m3_s, dp_Pa, degree, name=name)
    p, _ = fit_power(V_P_m3_s, P_el_W, c, eta_motor, name=name)
    return {
        "c1_Pa": c[0], "c2_Pa_s_m3": c[1], "c3_Pa_s2_m6": c[2], "c4_Pa_s3_m9": c[3],
        "p0_W": p[0], "p1_W_s_m3": p[1], "p2_W_s2_m6": p[2], "p3_W_s3_m9": p[3],
        "eta_motor": float(eta_motor), "rho_ref_kg_m3": float(rho_ref_kg_m3),
        "f_motor_heat_fluid": 1.0 if motor_cooled_by_fluid else 0.0,
    }


def fit_table(table: PumpTable, **kwargs) -> dict[str, float]:
    """fit_pump on a PumpTable (e.g. one of read_wilo's)."""
    kwargs.setdefault("motor_cooled_by_fluid", table.motor_cooled_by_fluid)
    return fit_pump(table.V_dp_m3_s, table.dp_Pa, table.V_P_m3_s, table.P_el_W, name=table.name, **kwargs)


def head_Pa(params: dict[str, float], V_m3_s, r: float = 1.0):
    """The fitted head r^2 H(V / r) at the reference density (for checks and plots)."""
    V = np.asarray(V_m3_s, float)
    return (r * r * params["c1_Pa"] + r * params["c2_Pa_s_m3"] * V + params["c3_Pa_s2_m6"] * V ** 2
            + params["c4_Pa_s3_m9"] * V ** 3 / r)


def runout_m3_s(params: dict[str, float]) -> float:
    """The flow at zero head at nominal speed."""
    return runout(np.array([params["c1_Pa"], params["c2_Pa_s_m3"], params["c3_Pa_s2_m6"], params["c4_Pa_s3_m9"]]))


__all__ = ["PumpTable", "read_wilo", "fit_head", "fit_power", "fit_pump", "fit_table", "head_Pa", "runout_m3_s",
           "RHO_REF_KG_M3", "ETA_MOTOR"]
