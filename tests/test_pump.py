"""Pump: operating-point oracle, affinity laws, the Wilo manufacturer curves (fitted with twin.pump_fit), faults
(trip and coast-down, stuck speed, degraded head, efficiency loss), speed filter, zero flow, parameter refusal,
and the 24 h energy balance at 1 s and 60 s steps."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from twin import pump_fit
from twin.errors import CalibrationError, FmuError
from twin.fmu import Fmu
from twin.fmu_reference import simulate_table
from twin.water import fit

V_RTOL = 1e-12           # flows against closed-form oracles (the FMU solves the same equations in double precision)
SPEED_ATOL = 1e-12       # speeds against the exact first-order and coast-down solutions
ENERGY_RTOL = 1e-9       # integrals of power against their analytic values; balances
TRAPZ_RTOL = 1e-3        # E_el against an independent trapezoidal integral of sampled P_el (the 0.1 %)
HEAD_RTOL_WILO = 0.02    # the issue: tabulated head within 2 % ...
POWER_RTOL_WILO = 0.03   # ... and tabulated electric power within 3 %

T_REF_K = 293.15
RHO_REF = float(fit().rho_kg_m3(T_REF_K))   # reference density = water at T_REF_K: the density scale is exactly 1

# a quadratic pump (c2 = c4 = 0) for the closed-form oracles: dp = r^2 H0 - k V^2
H0_PA, K_PUMP = 2.0e5, 4.0e9
QUAD = {"c1_Pa": H0_PA, "c2_Pa_s_m3": 0.0, "c3_Pa_s2_m6": -K_PUMP, "c4_Pa_s3_m9": 0.0,
        "p0_W": 800.0, "p1_W_s_m3": 2.0e5, "p2_W_s2_m6": 1.0e7, "p3_W_s3_m9": -5.0e8,
        "eta_motor": 0.9, "rho_ref_kg_m3": RHO_REF, "f_motor_heat_fluid": 0.0}


def run(path, t, inputs, parameters=None, outputs=None) -> pd.DataFrame:
    """simulate_table with scalar inputs broadcast: row k's inputs act on [t_k, t_k+1), row k+1 holds the outputs."""
    t = np.asarray(t, dtype=float)
    full = {n: np.broadcast_to(np.asarray(v, dtype=float), t.shape).copy() for n, v in inputs.items()}
    return simulate_table(path, t, full, outputs=outputs, parameters=parameters)


def steady(path, r, K, parameters, **inputs):
    """Outputs at constant speed r (started there, no transient) after one 60 s step."""
    p = dict(parameters) | {"speed_start_rel": r}
    base = {"speed_cmd_rel": r, "K_sys_Pa_s2_m6": K, "T_K": T_REF_K}
    return run(path, [0.0, 60.0], base | inputs, parameters=p).iloc[-1]


def P_quad(r, V, p=QUAD):
    return p["p0_W"] * r ** 3 + p["p1_W_s_m3"] * r ** 2 * V + p["p2_W_s2_m6"] * r * V ** 2 + p["p3_W_s3_m9"] * V ** 3


# ---- operating point ----

@pytest.mark.parametrize("r", [0.3, 0.5, 0.8, 1.0, 1.2])
@pytest.mark.parametrize("K", [1e8, 1e9, 1e10, 1e12])
def test_operating_point_oracle_quadratic_pump_on_pure_system_curve(fmu_path, r, K):
    """dp = r^2 H0 - k V^2 against K V^2: V = r sqrt(H0 / (k + K))."""
    out = steady(fmu_path("Pump"), r, K, QUAD)
    V = r * math.sqrt(H0_PA / (K_PUMP + K))
    assert out["V_flow_m3_s"] == pytest.approx(V, rel=V_RTOL)
    assert out["dp_Pa"] == pytest.approx(K * V * V, rel=V_RTOL)
    assert out["mdot_kg_s"] == pytest.approx(RHO_REF * V, rel=V_RTOL)
    assert out["P_hyd_W"] == pytest.approx(K * V ** 3, rel=V_RTOL)
    assert out["P_el_W"] == pytest.approx(P_quad(r, V), rel=V_RTOL)
    assert out["speed_rel"] == r


@pytest.mark.parametrize("dp_static", [0.0, 2e4, 6e4])
@pytest.mark.parametrize("r", [0.6, 1.0])
def test_operating_point_cubic_curve_with_static_head_matches_a_root_finder(fmu_path, dp_static, r):
    """The default (fitted, cubic) curve against dp_static + K V^2: the FMU's Newton iteration vs brentq."""
    path = fmu_path("Pump")
    with Fmu(path) as f:
        f.setup()
        prm = {p.name: float(p.start) for p in f.ports.values() if p.causality == "parameter"}
    K = 4e9
    out = steady(path, r, K, {"rho_ref_kg_m3": RHO_REF}, dp_static_Pa=dp_static)
    H = lambda V: pump_fit.head_Pa(prm, V, r)
    V_run = r * pump_fit.runout_m3_s(prm)
    V = brentq(lambda V: H(V) - dp_static - K * V * V, 0.0, V_run, xtol=1e-18, rtol=1e-15)
    assert out["V_flow_m3_s"] == pytest.approx(V, rel=V_RTOL)
    assert out["dp_Pa"] == pytest.approx(dp_static + K * V * V, rel=V_RTOL)


def test_density_scales_head_and_power(fmu_path):
    """Head and power scale with rho / rho_ref (pump head in metres is density-independent); K does not."""
    T = 353.15
    s = float(fit().rho_kg_m3(T)) / RHO_REF
    r, K = 0.9, 3e9
    out = steady(fmu_path("Pump"), r, K, QUAD, T_K=T)
    V = r * math.sqrt(s * H0_PA / (s * K_PUMP + K))
    assert s < 0.98
    assert out["V_flow_m3_s"] == pytest.approx(V, rel=V_RTOL)
    assert out["mdot_kg_s"] == pytest.approx(s * RHO_REF * V, rel=V_RTOL)
    assert out["P_el_W"] == pytest.approx(s * P_quad(r, V), rel=V_RTOL)


def test_static_head_above_shutoff_gives_zero_flow_not_negative(fmu_path):
    """Shut-off head r^2 H0 <= dp_static: the pump cannot lift the static head; no flow, shut-off power."""
    r = 0.7
    for dp_static in (r * r * H0_PA, r * r * H0_PA * 1.5, 5e6):
        out = steady(fmu_path("Pump"), r, 1e9, QUAD, dp_static_Pa=dp_static)
        assert out["V_flow_m3_s"] == 0.0 and out["mdot_kg_s"] == 0.0 and out["P_hyd_W"] == 0.0
        assert out["dp_Pa"] == pytest.approx(r * r * H0_PA, rel=V_RTOL)
        assert out["P_el_W"] == pytest.approx(QUAD["p0_W"] * r ** 3, rel=V_RTOL)
    # just below the shut-off head the flow is small and positive (continuous at the clip)
    out = steady(fmu_path("Pump"), r, 1e9, QUAD, dp_static_Pa=r * r * H0_PA * (1 - 1e-6))
    assert 0.0 < out["V_flow_m3_s"] < 1e-5


# ---- affinity laws ----

@pytest.mark.parametrize("params", ["default", "quadratic"])
def test_affinity_laws_half_speed(fmu_path, params):
    """Against a pure K V^2 system: at r = 0.5 the flow halves, dp quarters, power falls to 1/8."""
    prm = QUAD if params == "quadratic" else {"rho_ref_kg_m3": RHO_REF}
    full = steady(fmu_path("Pump"), 1.0, 4e9, prm)
    half = steady(fmu_path("Pump"), 0.5, 4e9, prm)
    assert half["V_flow_m3_s"] == pytest.approx(0.5 * full["V_flow_m3_s"], rel=V_RTOL)
    assert half["dp_Pa"] == pytest.approx(0.25 * full["dp_Pa"], rel=V_RTOL)
    assert half["P_el_W"] == pytest.approx(0.125 * full["P_el_W"], rel=V_RTOL)
    assert half["eta_total"] == pytest.approx(full["eta_total"], rel=V_RTOL)


# ---- measured data: Wilo curves ----

@pytest.fixture(scope="module")
def wilo(shared_data):
    return pump_fit.read_wilo(shared_data / "pump_curves_wilo")


def wilo_errors(path, table, params):
    """Drive the FMU, for each tabulated point, against the system curve through that point (K = dp_i / V_i^2, or
    a closed valve for V_i = 0), and compare its head and power with the table. Returns (head, power, flow) errors,
    relative to the tabulated values."""
    assert np.array_equal(table.V_dp_m3_s, table.V_P_m3_s), f"{table.name}: pressure and power tables differ in flow"
    V_i, dp_i, P_i = table.V_dp_m3_s, table.dp_Pa, table.P_el_W
    n = V_i.size
    K = np.where(V_i > 0, dp_i / np.where(V_i > 0, V_i, 1.0) ** 2, 0.0)
    closed = np.where(V_i > 0, 0.0, 1e7)                 # V_i = 0: a closed valve (static head above shut-off)
    t = np.arange(n + 1, dtype=float)
    out = run(path, t, {"speed_cmd_rel": 1.0, "K_sys_Pa_s2_m6": np.append(K, K[-1]),
                        "dp_static_Pa": np.append(closed, closed[-1]), "T_K": T_REF_K},
              parameters=params | {"speed_start_rel": 1.0, "t_rise_s": 0.0},
              outputs=["V_flow_m3_s", "dp_Pa", "P_el_W"]).iloc[1:]
    e_dp = out["dp_Pa"].to_numpy() / dp_i - 1.0
    e_P = out["P_el_W"].to_numpy() / P_i - 1.0
    e_V = np.where(V_i > 0, out["V_flow_m3_s"].to_numpy() / np.where(V_i > 0, V_i, 1.0) - 1.0, out["V_flow_m3_s"])
    return e_dp, e_P, e_V


def test_wilo_every_pump_reproduces_head_within_2_and_power_within_3_percent(fmu_path, wilo):
    """All 18 Wilo records: the FMU with fitted parameters (cubic head curve, see README) at each tabulated point."""
    path = fmu_path("Pump")
    rows, failures = [], []
    for name, table in wilo.items():
        params = pump_fit.fit_table(table, rho_ref_kg_m3=RHO_REF)
        e_dp, e_P, e_V = wilo_errors(path, table, params)
        worst = (np.max(np.abs(e_dp)), np.max(np.abs(e_P)), np.max(np.abs(e_V)))
        rows.append(f"{name:38s} head {100 * worst[0]:5.2f} %  power {100 * worst[1]:5.2f} %  flow {100 * worst[2]:5.2f} %")
        if worst[0] > HEAD_RTOL_WILO or worst[1] > POWER_RTOL_WILO:
            failures.append(name)
    print("\nworst relative errors per Wilo pump (FMU vs table):\n" + "\n".join(rows))
    assert len(rows) == 18
    assert not failures, f"pumps outside 2 % head / 3 % power: {failures}\n" + "\n".join(rows)


def test_wilo_fit_is_physical(wilo):
    """Every fitted pump: efficiency below 1 (and below eta_motor) up to run-out, positive power, run-out beyond the
    table, and the best wire-to-water efficiency in a plausible range."""
    for name, table in wilo.items():
        prm = pump_fit.fit_table(table)
        V_run = pump_fit.runout_m3_s(prm)
        assert V_run > table.V_dp_m3_s.max(), name
        V = np.linspace(0.0, V_run, 5001)
        P = prm["p0_W"] + prm["p1_W_s_m3"] * V + prm["p2_W_s2_m6"] * V ** 2 + prm["p3_W_s3_m9"] * V ** 3
        eta = V * pump_fit.head_Pa(prm, V) / P
        assert np.all(P > 0), name
        assert eta.max() < prm["eta_motor"], name
        assert 0.2 < eta.max() < 0.8, f"{name}: best wire-to-water efficiency {eta.max():.3f}"


def test_fit_recovers_an_exact_cubic_and_refuses_bad_tables():
    c_true = np.array([1.5e5, 2.0e6, -3.0e8, -4.0e9])
    V = np.linspace(0.0, 0.02, 12)
    dp = c_true[0] + c_true[1] * V + c_true[2] * V ** 2 + c_true[3] * V ** 3
    c, err = pump_fit.fit_head(V, dp, 3)
    assert err < 1e-9
    np.testing.assert_allclose(c, c_true, rtol=1e-6)
    with pytest.raises(CalibrationError, match="at least"):
        pump_fit.fit_head(V[:3], dp[:3], 3)
    with pytest.raises(CalibrationError, match="values <= 0"):
        pump_fit.fit_head(V, dp - dp.max(), 3)
    with pytest.raises(CalibrationError, match="degree"):
        pump_fit.fit_head(V, dp, 4)


# ---- faults ----

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_start_up_energy_is_the_analytic_integral(fmu_path, h_s):
    """Start from rest, command 1: r(t) = 1 - exp(-t / tau); against K V^2, P_el = P1 r^3 and
    int_0^T r^3 dt = T - 3 tau (1 - e^(-T/tau)) + 3/2 tau (1 - e^(-2T/tau)) - 1/3 tau (1 - e^(-3T/tau))."""
    t_rise = 20.0
    tau = t_rise / math.log(9.0)
    t = np.arange(0.0, 300.0 + h_s, h_s)
    out = run(fmu_path("Pump"), t, {"speed_cmd_rel": 1.0, "K_sys_Pa_s2_m6": 2e9, "T_K": T_REF_K},
              parameters=QUAD | {"t_rise_s": t_rise})
    P1 = P_quad(1.0, math.sqrt(H0_PA / (K_PUMP + 2e9)))
    e = lambda k: tau / k * (1.0 - np.exp(-k * t / tau))
    np.testing.assert_allclose(out["E_el_J"], P1 * (t - 3 * e(1) + 3 * e(2) - e(3)), rtol=ENERGY_RTOL, atol=1e-9)


@pytest.mark.parametrize("h_s", [1.0, 7.0, 60.0])
@pytest.mark.parametrize("direction", ["start", "stop"])
def test_energy_when_the_flow_starts_or_stops_against_a_static_head(fmu_path, h_s, direction):
    """The default curve has a hump (c2 > 0): the flow jumps where the shut-off head crosses the static head and
    varies like a square root next to it. E_el over the transient against scipy's adaptive quadrature of the same
    operating point (solved here with brentq), split at the crossing."""
    path = fmu_path("Pump")
    with Fmu(path) as f:
        f.setup()
        prm = {p.name: float(p.start) for p in f.ports.values() if p.causality == "parameter"}
    r0, r1 = (0.4, 1.1) if direction == "start" else (1.1, 0.4)
    K, dps, t_rise = 3e9, 1.2e5, 15.0
    tau = t_rise / math.log(9.0)
    t = np.arange(0.0, 120.0 + h_s, h_s)
    out = run(path, t, {"speed_cmd_rel": r1, "K_sys_Pa_s2_m6": K, "dp_static_Pa": dps, "T_K": T_REF_K},
              parameters={"rho_ref_kg_m3": RHO_REF, "speed_start_rel": r0, "t_rise_s": t_rise})
    V_run = pump_fit.runout_m3_s(prm)

    def P_el(tt):
        r = r1 + (r0 - r1) * math.exp(-tt / tau)
        g = lambda V: pump_fit.head_Pa(prm, V, r) - dps - K * V * V
        V = brentq(g, 0.0, r * V_run, xtol=1e-20, rtol=1e-15) if g(0.0) > 0 else 0.0
        return prm["p0_W"] * r ** 3 + prm["p1_W_s_m3"] * r * r * V + prm["p2_W_s2_m6"] * r * V * V + prm["p3_W_s3_m9"] * V ** 3

    r_c = math.sqrt(dps / prm["c1_Pa"])
    t_c = tau * math.log((r0 - r1) / (r_c - r1))
    T_end = t[-1]
    E = quad(P_el, 0.0, t_c, limit=400, epsabs=0, epsrel=1e-13)[0] + quad(P_el, t_c, T_end, limit=400, epsabs=0, epsrel=1e-13)[0]
    assert 0 < t_c < T_end
    assert out["E_el_J"].iloc[-1] == pytest.approx(E, rel=ENERGY_RTOL)


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_trip_coasts_down_exponentially_and_its_energy_is_the_analytic_integral(fmu_path, h_s):
    """Trip at t = 0 from r0 = 1: r(t) = exp(-t / tau_coast); against a pure K V^2 system P_el = P1 r^3, so the
    electric energy of the coast-down is P1 tau / 3 (1 - exp(-3 t / tau))."""
    tau = 7.0
    t = np.arange(0.0, 240.0 + h_s, h_s)
    prm = QUAD | {"speed_start_rel": 1.0, "tau_coast_s": tau}
    out = run(fmu_path("Pump"), t, {"speed_cmd_rel": 1.0, "K_sys_Pa_s2_m6": 2e9, "T_K": T_REF_K, "trip": 1.0},
              parameters=prm)
    np.testing.assert_allclose(out["speed_rel"], np.exp(-t / tau), rtol=0, atol=SPEED_ATOL)
    assert np.all(out["tripped"].iloc[1:] == 1.0)
    V1 = math.sqrt(H0_PA / (K_PUMP + 2e9))
    P1 = P_quad(1.0, V1)
    E = P1 * tau / 3.0 * (1.0 - np.exp(-3.0 * t / tau))
    np.testing.assert_allclose(out["E_el_J"], E, rtol=ENERGY_RTOL, atol=0)
    assert out["E_hyd_J"].iloc[-1] == pytest.approx(2e9 * V1 ** 3 * tau / 3.0, rel=ENERGY_RTOL)


def test_trip_overrides_stuck_and_release_restarts_through_the_speed_filter(fmu_path):
    t_rise, tau_c = 10.0, 5.0
    t = np.arange(0.0, 181.0, 1.0)
    trip = ((t >= 30) & (t < 90)).astype(float)
    out = run(fmu_path("Pump"), t, {"speed_cmd_rel": 0.8, "K_sys_Pa_s2_m6": 4e9, "trip": trip, "stuck": 1.0},
              parameters={"speed_start_rel": 0.8, "t_rise_s": t_rise, "tau_coast_s": tau_c})
    s = out["speed_rel"].to_numpy()
    assert np.all(s[:31] == 0.8)                                          # stuck at its value
    np.testing.assert_allclose(s[30:91], 0.8 * np.exp(-(t[30:91] - 30) / tau_c), atol=SPEED_ATOL)  # trip wins
    assert np.all(s[91:] == s[90])                                        # stuck again, at the coasted-down speed
    free = run(fmu_path("Pump"), t, {"speed_cmd_rel": 0.8, "K_sys_Pa_s2_m6": 4e9, "trip": trip},
               parameters={"speed_start_rel": 0.8, "t_rise_s": t_rise, "tau_coast_s": tau_c})["speed_rel"].to_numpy()
    tau = t_rise / math.log(9.0)
    np.testing.assert_allclose(free[90:], 0.8 + (free[90] - 0.8) * np.exp(-(t[90:] - 90) / tau), atol=SPEED_ATOL)


def test_stuck_keeps_the_speed_whatever_the_command(fmu_path):
    t = np.arange(0.0, 601.0, 60.0)
    cmd = np.array([0.9, 0.9, 0.2, 1.1, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    stuck = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    out = run(fmu_path("Pump"), t, {"speed_cmd_rel": cmd, "stuck": stuck}, parameters={"speed_start_rel": 0.9})
    s = out["speed_rel"].to_numpy()
    assert np.all(s[:7] == 0.9)          # rows 3..6 are the steps with stuck = 1: the speed does not move
    assert s[7] < 0.9 and s[-1] == pytest.approx(0.5, abs=1e-5)


def test_degraded_head_reduces_flow_as_the_oracle_says(fmu_path):
    """Head factor f on dp = r^2 H0 - k V^2 against K V^2: V = r sqrt(f H0 / (f k + K)); power at the new flow."""
    r, K = 0.9, 3e9
    for f in (1.0, 0.8, 0.5, 0.1):
        out = steady(fmu_path("Pump"), r, K, QUAD, head_factor_rel=f)
        V = r * math.sqrt(f * H0_PA / (f * K_PUMP + K))
        assert out["V_flow_m3_s"] == pytest.approx(V, rel=V_RTOL)
        assert out["P_el_W"] == pytest.approx(P_quad(r, V), rel=V_RTOL)
    zero = steady(fmu_path("Pump"), r, K, QUAD, head_factor_rel=0.0)
    assert zero["V_flow_m3_s"] == 0.0 and zero["dp_Pa"] == 0.0
    assert zero["P_el_W"] == pytest.approx(QUAD["p0_W"] * r ** 3, rel=V_RTOL)


def test_efficiency_loss_raises_power_at_the_same_flow(fmu_path):
    r, K = 1.0, 4e9
    ok = steady(fmu_path("Pump"), r, K, QUAD | {"f_motor_heat_fluid": 0.5})
    for f in (0.9, 0.5, 0.25):
        bad = steady(fmu_path("Pump"), r, K, QUAD | {"f_motor_heat_fluid": 0.5}, eta_factor_rel=f)
        assert bad["V_flow_m3_s"] == ok["V_flow_m3_s"] and bad["dp_Pa"] == ok["dp_Pa"]
        assert bad["P_el_W"] == pytest.approx(ok["P_el_W"] / f, rel=V_RTOL)
        assert bad["eta_total"] == pytest.approx(ok["eta_total"] * f, rel=V_RTOL)
        # the extra power is lost inside the pump, so it heats the water: Q_fluid = P_shaft + 0.5 motor losses
        assert bad["Q_fluid_W"] == pytest.approx((0.9 + 0.5 * 0.1) * ok["P_el_W"] / f, rel=V_RTOL)


# ---- speed filter ----

@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_speed_filter_rise_time_and_no_overshoot(fmu_path, h_s):
    t_rise = 30.0
    tau = t_rise / math.log(9.0)
    t = np.arange(0.0, 1200.0 + h_s, h_s)
    cmd = np.where(t < 600, 1.0, 0.3)
    out = run(fmu_path("Pump"), t, {"speed_cmd_rel": cmd}, parameters={"t_rise_s": t_rise})
    s = out["speed_rel"].to_numpy()
    up, down = t <= 600, t >= 600
    np.testing.assert_allclose(s[up], 1.0 - np.exp(-t[up] / tau), atol=SPEED_ATOL)
    np.testing.assert_allclose(s[down], 0.3 + (s[t == 600][0] - 0.3) * np.exp(-(t[down] - 600) / tau), atol=SPEED_ATOL)
    assert np.all(np.diff(s[up]) >= 0) and np.all(s[up] <= 1.0)          # no overshoot
    assert np.all(np.diff(s[down]) <= 0) and np.all(s[down] >= 0.3)      # no undershoot
    if h_s == 1.0:
        # 10 % and 90 % crossings, by linear interpolation of -ln(1 - s) (linear in t for a first-order response)
        z = -np.log(1.0 - s[up][1:200])
        t10, t90 = np.interp([-math.log(0.9), -math.log(0.1)], z, t[up][1:200])
        assert t90 - t10 == pytest.approx(t_rise, rel=1e-9)


@pytest.mark.parametrize("h_s", [1.0, 60.0])
def test_random_commands_stay_between_speed_and_command_and_outputs_finite(fmu_path, h_s):
    rng = np.random.default_rng(3)
    t = np.arange(0.0, 3600.0 + h_s, h_s)
    cmd = np.repeat(rng.uniform(0.0, 1.2, t.size // 60 + 1), 60)[:t.size] if h_s == 1.0 else rng.uniform(0, 1.2, t.size)
    out = run(fmu_path("Pump"), t, {"speed_cmd_rel": cmd, "dp_static_Pa": 5e4})
    s = out["speed_rel"].to_numpy()
    lo, hi = np.minimum(s[:-1], cmd[:-1]), np.maximum(s[:-1], cmd[:-1])
    assert np.all(s[1:] >= lo - 1e-15) and np.all(s[1:] <= hi + 1e-15)
    assert np.all(np.isfinite(out.to_numpy())) and np.all(out["V_flow_m3_s"] >= 0)
    assert np.all(out["eta_total"] < 0.9) and np.all(out["P_el_W"] >= out["P_shaft_W"])
    assert np.all(out["P_shaft_W"] >= out["P_hyd_W"])


def test_zero_speed_is_zero_flow_with_finite_outputs(fmu_path):
    out = run(fmu_path("Pump"), np.arange(0.0, 601.0, 60.0), {"speed_cmd_rel": 0.0, "K_sys_Pa_s2_m6": 0.0})
    assert np.all(np.isfinite(out.to_numpy()))
    for name in ("speed_rel", "V_flow_m3_s", "dp_Pa", "P_el_W", "P_hyd_W", "eta_total", "Q_fluid_W", "E_el_J"):
        assert np.all(out[name] == 0.0), name


def test_zero_step_recomputes_outputs_without_advancing(fmu_path):
    with Fmu(fmu_path("Pump")) as f:
        f.setup(0.0, parameters={"speed_start_rel": 0.7})
        f.bind(["speed_cmd_rel", "K_sys_Pa_s2_m6"], ["speed_rel", "V_flow_m3_s", "E_el_J"])
        a = f.step(0.0, 60.0, np.array([0.7, 4e9])).copy()
        b = f.step(60.0, 0.0, np.array([1.0, 1e9])).copy()
    assert b[0] == a[0] == 0.7 and b[2] == a[2]      # the speed and the energy do not move in a zero step
    V = steady(fmu_path("Pump"), 0.7, 1e9, {}, T_K=303.15)["V_flow_m3_s"]
    assert b[1] == V and V > 1.5 * a[1]              # but the flow follows the new system curve


# ---- parameters that cannot work ----

@pytest.mark.parametrize("bad, match", [
    ({"c1_Pa": 0.0}, "c1_Pa"),
    ({"c3_Pa_s2_m6": -1e9, "c4_Pa_s3_m9": 1e15}, "convex"),
    ({"c2_Pa_s_m3": 1e6, "c3_Pa_s2_m6": 0.0, "c4_Pa_s3_m9": 0.0}, "never reaches zero head"),
    ({"p0_W": 10.0, "p1_W_s_m3": 0.0, "p2_W_s2_m6": 0.0, "p3_W_s3_m9": 0.0}, "hydraulic power"),
    ({"p0_W": -1.0}, "must be positive"),
])
def test_impossible_curves_are_refused_at_initialization(fmu_path, bad, match):
    with Fmu(fmu_path("Pump")) as f:
        with pytest.raises(FmuError, match=match):
            f.setup(0.0, parameters=bad)


# ---- energy ----

N_MIN = 24 * 60


def random_minutes(seed=11):
    """24 h of inputs changing every minute, with trips, stuck spells, static heads above shut-off and faults."""
    rng = np.random.default_rng(seed)
    n = N_MIN
    return {"speed_cmd_rel": np.where(rng.uniform(size=n) < 0.1, 0.0, rng.uniform(0.2, 1.2, n)),
            "K_sys_Pa_s2_m6": rng.uniform(1e9, 2e10, n),
            "dp_static_Pa": np.where(rng.uniform(size=n) < 0.2, rng.uniform(0, 2.5e5, n), 0.0),
            "T_K": 303.15 + 40.0 * rng.uniform(size=n),
            "trip": (rng.uniform(size=n) < 0.03).astype(float),
            "stuck": (rng.uniform(size=n) < 0.05).astype(float),
            "head_factor_rel": rng.uniform(0.6, 1.0, n),
            "eta_factor_rel": rng.uniform(0.5, 1.0, n)}


def at(minutes, t):
    k = np.minimum((t // 60.0).astype(int), N_MIN - 1)
    return {name: a[k] for name, a in minutes.items()}


def test_energy_24h_balances_and_equals_the_integral_of_power(fmu_path):
    prm = {"f_motor_heat_fluid": 0.3, "speed_start_rel": 0.5}
    u = random_minutes()
    t60 = np.arange(0.0, 86401.0, 60.0)
    coarse = run(fmu_path("Pump"), t60, at(u, t60), parameters=prm)
    # 1 s steps; each minute starts with a zero step under the minute's new inputs, so that the power sampled at
    # the minute's start is the one acting from there on (the operating point jumps with K, dp_static, faults)
    t1 = np.sort(np.concatenate([np.arange(0.0, 86401.0, 1.0), np.arange(0.0, 86400.0, 60.0)]))
    fine = run(fmu_path("Pump"), t1, at(u, t1), parameters=prm)
    end, end1 = coarse.iloc[-1], fine.iloc[-1]
    # the balances, for each run: electric = hydraulic + pump losses + motor losses = heat to water + heat to air
    for e in (end, end1):
        assert e["E_el_J"] == pytest.approx(e["E_hyd_J"] + e["E_loss_hyd_J"] + e["E_loss_motor_J"], rel=ENERGY_RTOL)
        assert e["E_el_J"] == pytest.approx(e["E_fluid_J"] + e["E_air_J"], rel=ENERGY_RTOL)
        assert e["E_loss_hyd_J"] > 0 and e["E_loss_motor_J"] > 0 and e["E_air_J"] > 0
    # the energies do not depend on the step: they integrate along the exact speed trajectory
    for name in ("E_el_J", "E_hyd_J", "E_fluid_J", "E_air_J"):
        assert end[name] == pytest.approx(end1[name], rel=ENERGY_RTOL), name
    # and they are the integral of the power sampled every second (trapezoidal rule, an independent quadrature)
    dt = np.diff(t1)
    for E, P in (("E_el_J", "P_el_W"), ("E_hyd_J", "P_hyd_W"), ("E_fluid_J", "Q_fluid_W")):
        p = fine[P].to_numpy()
        trapz = float(np.sum(0.5 * (p[1:] + p[:-1]) * dt))
        assert trapz == pytest.approx(end1[E], rel=TRAPZ_RTOL), E
